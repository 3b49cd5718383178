// A process of its own that opens the store, for the tests that need a second process (an edge
// reading while the supervisor writes) or another user. Run through storeChild().
//
//   open <dataDir> <ro|rw>  tries openStore, prints {"ok":true,"tokens":n} or
//                           {"code","message"}, exits
//   follow <dataDir>        opens read-only, prints {"ready":true}, then reads in a loop; each
//                           stdin line is a JSON command answered with one JSON line:
//                           {"op":"refresh"} {"op":"token","id"} {"op":"counts"} {"op":"stop"}
import { createInterface } from 'node:readline';
import { openStore, type Store } from '../../shared/store.js';

const [mode, dataDir, access] = process.argv.slice(2);

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function failure(err: unknown): { code: string; message: string } {
  return { code: String((err as { code?: unknown }).code), message: (err as Error).message };
}

async function tryOpen(): Promise<void> {
  try {
    const store = openStore(dataDir!, { readOnly: access === 'ro' });
    const { tokens } = store.counts();
    await store.close();
    print({ ok: true, tokens });
  } catch (err) {
    print(failure(err));
  }
}

// Reads on every turn of the event loop while the parent writes: each must succeed.
function follow(): void {
  const store = openStore(dataDir!, { readOnly: true });
  const tally = { reads: 0, errors: [] as string[] };
  let running = true;
  const loop = (): void => {
    if (!running) return;
    try {
      store.counts();
      store.revocationsInForce(0);
      store.stats({ limit: 50, nowSeconds: 0 });
      tally.reads++;
    } catch (err) {
      tally.errors.push(failure(err).message);
    }
    setImmediate(loop);
  };
  loop();
  print({ ready: true });
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as { op: string; id?: string };
    answer(store, command, tally, () => {
      running = false;
    });
  });
}

function answer(
  store: Store,
  command: { op: string; id?: string },
  tally: { reads: number; errors: string[] },
  stop: () => void,
): void {
  switch (command.op) {
    case 'refresh':
      store.refresh();
      print({ refreshed: true });
      return;
    case 'token':
      print({ token: store.getToken(command.id!) ?? null });
      return;
    case 'counts':
      print({ counts: store.counts() });
      return;
    case 'stop':
      stop();
      store.close().then(() => {
        print(tally);
        process.exit(0);
      });
      return;
    default:
      print({ error: `unknown op ${command.op}` });
  }
}

if (mode === 'open') await tryOpen();
else if (mode === 'follow') follow();
else throw new Error(`unknown mode ${mode}`);
