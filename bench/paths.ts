import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Directory of the running bench module (dist/bench once built). */
export const benchDir = dirname(fileURLToPath(import.meta.url));

/** The compiled upstream child entry, next to this module. */
export const upstreamServerPath = join(benchDir, 'upstream-server.js');

/** The package root: the nearest ancestor holding package.json. */
export function packageRoot(from: string = benchDir): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

/** The gateway's compiled CLI, as `npm run build` lays it out. */
export function gatewayCliPath(root: string = packageRoot()): string {
  return join(root, 'dist', 'supervisor', 'cli.js');
}

/** Where result JSON files go (gitignored except .gitkeep). */
export function resultsDir(): string {
  return join(packageRoot(), 'bench', 'results');
}
