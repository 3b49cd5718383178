/** Dotted key path of a JSON/zod path: `['users', 1, 'allow', 0]` -> `users[1].allow[0]`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
    } else {
      const name = String(segment);
      if (!/^[A-Za-z_$][\w$-]*$/.test(name)) out += `[${JSON.stringify(name)}]`;
      else out += out === '' ? name : `.${name}`;
    }
  }
  return out === '' ? '(root)' : out;
}
