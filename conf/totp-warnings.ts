import type { Config } from './config-schema.js';

/**
 * Warnings about `users[].totp`: a plaintext secret (the original's format) works but anyone who
 * can read config.json can compute its codes; and with `login_via_otp` false no code is asked,
 * whatever `totp` says.
 */
export function totpWarnings(config: Config, file: string): string[] {
  const warnings: string[] = [];
  config.users.forEach((u, i) => {
    const key = `${file}: users[${i}].totp`;
    if (typeof u.totp === 'string') {
      warnings.push(
        `${key}: a plaintext TOTP secret: anyone who reads config.json can compute ${u.username}'s codes. ` +
          `Move it to the store, encrypted: run "proxyauth totp reset ${u.username}" (a new secret for ` +
          'the user to scan; the one in this file should be taken as exposed), then set "totp": true',
      );
    }
    if (u.totp !== false && !config.login_via_otp) {
      warnings.push(`${key}: login_via_otp is false, so no TOTP code is asked at login`);
    }
  });
  return warnings;
}
