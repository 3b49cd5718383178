/** A route of a test's routes.yml. */
export interface TestRoute {
  readonly prefix: string;
  /** The target's path after the origin; default the prefix. */
  readonly path?: string;
  /** Any other field of the route, as its YAML value: `false`, `'[GET]'`, `'{ burst: 1 }'`. */
  readonly [field: string]: string | number | boolean | undefined;
}

/** The routes.yml of `routes`, every target on `origin`, the fields in the order given. */
export function routesYaml(origin: string, routes: readonly TestRoute[]): string {
  const lines = ['routes:'];
  for (const { prefix, path = prefix, ...fields } of routes) {
    lines.push(`  - prefix: ${prefix}`, `    target: ${origin}${path}`);
    for (const [field, value] of Object.entries(fields)) {
      if (value !== undefined) lines.push(`    ${field}: ${value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
