// Entry point of `proxyauth explain`'s worker, forked by the CLI (supervisor/explain-command.ts,
// which never imports the edge's code). It receives one ExplainSpec over IPC, loads the config
// dir with the same validation as `run` and `check-config`, opens the store read-only, runs the
// request through the edge's code (explain.ts) and prints the report. Exit status: 0 when the
// request was explained (whatever the verdict), 1 when it could not be.

import { ConfigError } from '../conf/config-error.js';
import { loadConfigDir } from '../conf/load.js';
import { CodedError } from '../shared/coded-error.js';
import { type ExplainSpec, isExplainSpec } from '../shared/explain-spec.js';
import { openStore, type Store, StoreError } from '../shared/store.js';
import { explain } from './explain.js';
import { formatExplanation } from './explain-format.js';

async function run(spec: ExplainSpec): Promise<number> {
  let loaded: Awaited<ReturnType<typeof loadConfigDir>>;
  try {
    loaded = await loadConfigDir(spec.configDir);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.format()}\n`);
    return 1;
  }
  let store: Store;
  try {
    store = openStore(spec.dataDir, { readOnly: true, create: false });
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    process.stderr.write(
      `proxyauth: ${err.code}: ${err.message} (explain reads the key ring and revocations from the store a gateway start creates in --data-dir)\n`,
    );
    return 1;
  }
  try {
    const result = await explain({
      spec,
      loaded,
      store,
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    // Absent values are null in JSON, so that every key of the shape is always there.
    const json = () => JSON.stringify(result, (_k, v: unknown) => (v === undefined ? null : v), 2);
    process.stdout.write(spec.json ? `${json()}\n` : formatExplanation(result));
    return 0;
  } catch (err) {
    if (!(err instanceof CodedError)) throw err;
    process.stderr.write(`proxyauth: ${err.code}: ${err.message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

function exit(code: number): void {
  // stdout may be a pipe: let it drain before the process ends.
  process.stdout.write('', () => process.exit(code));
}

process.once('message', (message: unknown) => {
  if (!isExplainSpec(message)) {
    process.stderr.write('proxyauth: explain: malformed request from the CLI\n');
    exit(1);
    return;
  }
  run(message).then(exit, (err: unknown) => {
    process.stderr.write(
      `proxyauth: explain failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    exit(1);
  });
});
