import { readFileSync } from 'node:fs';

/** The package version, read from package.json next to the compiled tree. */
export function packageVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'proxyauth' && pkg.version) return pkg.version;
    } catch {
      // Not at this depth (compiled vs source layout); try the next one.
    }
  }
  return 'unknown';
}
