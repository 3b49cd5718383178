// A process of its own that opens the store, for the tests that need a second process (an edge
// reading while the supervisor writes) or another user. Run through storeChild().
//
//   open <dataDir> <ro|rw>  tries openStore, prints {"ok":true,"tokens":n} or
//                           {"code","message"}, exits
//   timed-open <dataDir> <ro|rw>  the same, and "openMs": the open, count and close alone
//                           (the child's start-up left out)
//   follow <dataDir>        opens read-only, prints {"ready":true}, then reads in a loop; each
//                           stdin line is a JSON command answered with one JSON line:
//                           {"op":"refresh"} {"op":"token","id"} {"op":"counts"} {"op":"stop"}
//   hold <dataDir>          opens as a writer (as the supervisor does, beside `proxyauth unban`),
//                           prints {"ready":true}, then answers each stdin line as follow does:
//                           {"op":"ban","ban"} -> {"ban"}; {"op":"getBan","kind","subject","now"}
//                           -> {"ban": LoginBan | null}; {"op":"banMany","prefix","count","until"}
//                           -> {"done":count} (one write after another); {"op":"bans","now"} ->
//                           {"bans"}; {"op":"stop"}. No refresh: reads see other processes'
//                           commits from the next event-loop turn, as the supervisor's do.
import { createInterface } from 'node:readline';
import { type LoginBan, openStore, type Store } from '../../shared/store.js';

const [mode, dataDir, access] = process.argv.slice(2);

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function failure(err: unknown): { code: string; message: string } {
  return { code: String((err as { code?: unknown }).code), message: (err as Error).message };
}

async function tryOpen(timed: boolean): Promise<void> {
  try {
    const started = performance.now();
    const store = openStore(dataDir!, { readOnly: access === 'ro' });
    const { tokens } = store.counts();
    await store.close();
    const openMs = Math.round(performance.now() - started);
    print(timed ? { ok: true, tokens, openMs } : { ok: true, tokens });
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

interface HoldCommand {
  op: string;
  ban?: LoginBan;
  kind?: 'user' | 'ip';
  subject?: string;
  now?: number;
  prefix?: string;
  count?: number;
  until?: number;
}

// A second writer beside the process under test; every answer is one line, errors included.
function hold(): void {
  const store = openStore(dataDir!, { readOnly: false });
  print({ ready: true });
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as HoldCommand;
    holdAnswer(store, command).then(print, (err: unknown) => print({ error: failure(err) }));
  });
}

async function holdAnswer(store: Store, command: HoldCommand): Promise<unknown> {
  switch (command.op) {
    case 'ban':
      return { ban: await store.ban(command.ban!) };
    case 'getBan':
      return { ban: store.getBan(command.kind!, command.subject!, command.now!) ?? null };
    case 'banMany':
      for (let i = 0; i < command.count!; i++) {
        const subject = `${command.prefix}${i}`;
        await store.ban({ kind: 'user', subject, until: command.until!, bannedAt: 1, failures: 1 });
      }
      return { done: command.count };
    case 'bans':
      return { bans: store.listBans(command.now!, 1_000_000) };
    case 'stop':
      await store.close();
      setImmediate(() => process.exit(0));
      return { stopped: true };
    default:
      return { error: `unknown op ${command.op}` };
  }
}

if (mode === 'open' || mode === 'timed-open') await tryOpen(mode === 'timed-open');
else if (mode === 'follow') follow();
else if (mode === 'hold') hold();
else throw new Error(`unknown mode ${mode}`);
