// Key rotation on a running gateway: `proxyauth keys rotate` beside it, then SIGHUP, rolls the
// new ring out to the edges (the new key active, the old one verify-only), and a token issued
// before keeps working. A new secret in config.json does the same through the file watch. A
// file of another node dropped in <config dir>/import/ is installed at the next reload; a bad
// one is refused with its name and the running configuration stays.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { keyIdHex } from '../shared/store.js';
import { deriveTokenKeys } from '../shared/token-keys.js';
import { buildBundle } from '../supervisor/sync-bundle.js';
import { seal } from '../supervisor/sync-pgp.js';
import { runCli } from './helpers/cli.js';
import { freshGet, logged, login, startGateway, waitFor } from './helpers/gateway.js';
import { startUpstream } from './helpers/upstream.js';

const SETTLE_MS = 15_000;
const upstream = await startUpstream();
const gw = await startGateway({
  routes: `routes:\n  - prefix: /api\n    target: ${upstream.origin}\n`,
  config: { token_expiry_seconds: 600 },
});
t.teardown(async () => {
  await gw.stop();
  await upstream.close();
});
const dirs = ['--config-dir', gw.configDir, '--data-dir', join(gw.configDir, 'data')];

function ringLogged(active: string, verifyOnly: string): boolean {
  return (
    logged(gw.output(), { message: 'key ring in force', active, verify_only: verifyOnly }).length >
    0
  );
}

t.test('rotate with the CLI, then SIGHUP: new active key, old one verify-only', async (t) => {
  const config = JSON.parse(await readFile(join(gw.configDir, 'config.json'), 'utf8')) as {
    secret: string;
  };
  const first = keyIdHex(deriveTokenKeys(config.secret).keyId);
  t.ok(ringLogged(first, ''), 'the start seeded the ring from config.json');
  const token = await login(gw.url);
  t.equal(await freshGet(gw.port, '/api/x', token), 200);

  const rotate = await runCli(['keys', 'rotate', ...dirs]);
  t.equal(rotate.code, 0, rotate.stderr);
  const second = /^new active key ([0-9a-f]{8})$/m.exec(rotate.stdout)?.[1] ?? '';
  t.not(second, '');
  gw.proc.kill('SIGHUP');
  t.ok(await waitFor(() => ringLogged(second, first), SETTLE_MS), 'the ring changed');
  t.ok(
    await waitFor(
      () =>
        logged(gw.output(), { message: 'configuration reloaded', reload: 'applied' }).length > 0,
      SETTLE_MS,
    ),
    'the reload rolled the ring out to the edges',
  );
  t.equal(await freshGet(gw.port, '/api/x', token), 200, 'a token issued before still works');
  const list = await runCli(['keys', 'list', ...dirs]);
  t.match(list.stdout, new RegExp(`^${first}\\s+config\\s+verify-only\\s`, 'm'));
  t.match(list.stdout, new RegExp(`^${second}\\s+generated\\s+active\\s`, 'm'));

  // config.json's secret is in the ring already: editing anything else does not undo the rotate.
  gw.proc.kill('SIGHUP');
  t.ok(
    await waitFor(
      () =>
        logged(gw.output(), { message: 'reload: configuration and certificates unchanged' })
          .length > 0,
      SETTLE_MS,
    ),
    'a second reload finds the same ring',
  );

  // A new secret in config.json is a rotation too (the file watch reloads).
  const third = 'a-brand-new-secret-'.padEnd(72, 'z');
  const text = await readFile(join(gw.configDir, 'config.json'), 'utf8');
  await writeFile(join(gw.configDir, 'config.json'), text.replace(config.secret, third));
  const thirdId = keyIdHex(deriveTokenKeys(third).keyId);
  t.ok(
    await waitFor(() => ringLogged(thirdId, [first, second].sort().join(',')), SETTLE_MS),
    'config.json secret active, both earlier keys verify-only',
  );
});

t.test(
  'the import dir: installed at reload, renamed; a bad file keeps the running config',
  async (t) => {
    const openpgp = await import('openpgp');
    const keygen = await runCli(['sync', 'keygen', ...dirs]);
    t.equal(keygen.code, 0, keygen.stderr);
    const recipient = await openpgp.readKey({ armoredKey: keygen.stdout });
    // Another node: its own key pair (trusted here) and its ring of one key.
    const other = await openpgp.generateKey({ type: 'curve25519', userIDs: [{ name: 'node a' }] });
    await mkdir(join(gw.configDir, 'sync-trusted'));
    await writeFile(join(gw.configDir, 'sync-trusted', 'a.asc'), other.publicKey);
    const material = 'other-node-key-'.padEnd(64, 'o');
    const id = keyIdHex(deriveTokenKeys(material).keyId);
    const now = Math.floor(Date.now() / 1000);
    const bundle = buildBundle(
      [
        {
          keyId: deriveTokenKeys(material).keyId,
          secret: material,
          source: 'generated',
          addedAt: now,
          activatedAt: now,
          retiredAt: null,
          verifyUntil: null,
          removedAt: null,
          tokenLifetime: 0,
        },
      ],
      'node-a',
      now,
      600,
    );
    const signer = await openpgp.readPrivateKey({ armoredKey: other.privateKey });
    const importDir = join(gw.configDir, 'import');
    await mkdir(importDir);
    await writeFile(
      join(importDir, 'a.pgp'),
      await seal(JSON.stringify(bundle), { recipient, signer }),
    );
    gw.proc.kill('SIGHUP');
    t.ok(
      await waitFor(
        () => logged(gw.output(), { message: 'key ring: imported', active: id }).length > 0,
        SETTLE_MS,
      ),
      'imported at the reload',
    );
    t.ok(
      await waitFor(
        () => logged(gw.output(), { message: 'key ring in force', active: id }).length > 0,
        SETTLE_MS,
      ),
    );
    t.ok((await stat(join(importDir, 'a.pgp.imported'))).isFile(), 'renamed');

    await writeFile(join(importDir, 'b.pgp'), 'not OpenPGP');
    gw.proc.kill('SIGHUP');
    t.ok(
      await waitFor(
        () =>
          logged(gw.output(), { reload: 'invalid', file: join(importDir, 'b.pgp'), key: '(file)' })
            .length > 0,
        SETTLE_MS,
      ),
      'the bad file is named, the reload refused',
    );
    t.match(logged(gw.output(), { reload: 'invalid', file: join(importDir, 'b.pgp') })[0], {
      rule: /^SYNC_NOT_OPENPGP/,
    });
    t.equal(await freshGet(gw.port, '/api/x', await login(gw.url)), 200, 'still serving');
  },
);
