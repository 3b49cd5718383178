import { fstatSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CodedError } from '../shared/coded-error.js';
import { parseIpEntry } from '../shared/ip-match.js';
import { usernameProblem } from '../shared/username.js';
import { type ExplainArgs, ExplainUsageError, explainOperands } from './explain-args.js';
import { COMMAND_NAMES, COMMANDS, type CommandName, isCommand } from './help.js';
import type { KeysAction } from './keys-command.js';
import type { SyncAction } from './sync-command.js';
import { SYSTEM_NAME } from './system-account.js';
import type { TotpAction } from './totp-command.js';

export type CliArgs =
  | {
      command: Exclude<CommandName, 'help'>;
      configDir: string | undefined;
      dataDir: string | undefined;
      /** `--ready-fd N`: where `run` writes its readiness line (supervisor/ready-signal.ts). */
      readyFd: number | undefined;
      /** `stats --user NAME`, `unban --user NAME`, `prepare --user NAME` (a system user). */
      user: string | undefined;
      /** `unban --ip ADDR`: an IP address or CIDR (checked, as written). */
      ip: string | undefined;
      /** `stats --json`, `totp reset --json`. */
      json: boolean;
      /** `totp ACTION USER`: the operands, checked. */
      totp: { action: TotpAction; user: string } | undefined;
      /** `keys ACTION [ID]`: the operands, checked (ID: a key id, for remove). */
      keys: { action: KeysAction; id: number | undefined } | undefined;
      /** `sync ACTION [FILE]`: the operands, checked (FILE: for import). */
      sync: { action: SyncAction; file: string | undefined } | undefined;
      /** `sync export --out FILE`, `--passphrase-file F`, `--recipient KEY.asc`. */
      out: string | undefined;
      passphraseFile: string | undefined;
      recipient: string | undefined;
      /** `sync export --force`, `sync import --verify-only`. */
      force: boolean;
      verifyOnly: boolean;
      /** `explain METHOD URL` with its options, checked. */
      explain: ExplainArgs | undefined;
    }
  | { command: 'help'; topic: CommandName | undefined }
  | { command: 'version' };

/** A command line that cannot be run as written: exit status 2, and a hint on stderr. */
export class UsageError extends CodedError<'USAGE'> {
  /** The command whose usage line to show; undefined when the command itself is unknown. */
  readonly topic: CommandName | undefined;

  constructor(message: string, topic: CommandName | undefined) {
    super('USAGE', message);
    this.topic = topic;
  }
}

const OPTIONS = {
  'config-dir': { type: 'string' },
  'data-dir': { type: 'string' },
  'ready-fd': { type: 'string' },
  user: { type: 'string' },
  ip: { type: 'string' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  'passphrase-file': { type: 'string' },
  recipient: { type: 'string' },
  force: { type: 'boolean' },
  'verify-only': { type: 'boolean' },
  header: { type: 'string', short: 'H', multiple: true },
  body: { type: 'string' },
  token: { type: 'string' },
  cookie: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/**
 * `argv` without the node and script paths. The command word is checked before the options,
 * so `proxyauth sync --force` says that `sync` does not exist rather than that `--force` does
 * not. `--help` and `--version` win over everything else once the command is known.
 */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  // parseArgs gives an option one short alias; `-v` is the common spelling besides `-V`.
  const args = argv.map((arg) => (arg === '-v' ? '--version' : arg));
  const word = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: false })
    .positionals[0];
  if (word !== undefined && !isCommand(word)) throw unknownCommand(word);
  const command: CommandName = word ?? 'run';
  const { values, positionals } = parseStrict(args, word === undefined ? undefined : command);
  if (values.version) return { command: 'version' };
  if (values.help) return { command: 'help', topic: word === undefined ? undefined : command };
  let extra = positionals.slice(1);
  let totp: { action: TotpAction; user: string } | undefined;
  let keys: { action: KeysAction; id: number | undefined } | undefined;
  let sync: { action: SyncAction; file: string | undefined } | undefined;
  if (command === 'totp') {
    totp = totpOperands(extra);
    extra = [];
  }
  if (command === 'keys') {
    keys = keysOperands(extra);
    extra = [];
  }
  if (command === 'sync') {
    sync = syncOperands(extra, values);
    extra = [];
  }
  let explain: ExplainArgs | undefined;
  if (command === 'explain') {
    try {
      explain = explainOperands(extra, values);
    } catch (err) {
      if (err instanceof ExplainUsageError) throw new UsageError(err.message, 'explain');
      throw err;
    }
    extra = [];
  }
  if (command === 'help') {
    const [topic, ...rest] = extra;
    if (topic !== undefined && !isCommand(topic)) throw unknownCommand(topic);
    if (rest.length > 0) throw new UsageError(`help: unexpected argument: ${rest[0]}`, 'help');
    return { command: 'help', topic };
  }
  if (extra.length > 0)
    throw new UsageError(`${command}: unexpected argument: ${extra[0]}`, command);
  // An option the command does not read would be ignored in silence: refuse it.
  const accepted: readonly string[] = COMMANDS[command].options;
  for (const name of Object.keys(values)) {
    if (name !== 'help' && name !== 'version' && !accepted.includes(name))
      throw new UsageError(`${command} does not take --${name}`, command);
  }
  if (command === 'unban') checkUnbanTarget(values.user, values.ip);
  if (command === 'prepare') checkSystemUser(values.user);
  return {
    command,
    configDir: values['config-dir'],
    dataDir: values['data-dir'],
    readyFd: readyFd(values['ready-fd'], command),
    user: values.user,
    ip: values.ip,
    json: values.json === true,
    totp,
    keys,
    sync,
    out: values.out,
    passphraseFile: values['passphrase-file'],
    recipient: values.recipient,
    force: values.force === true,
    verifyOnly: values['verify-only'] === true,
    explain,
  };
}

/** `keys list`, `keys rotate`, `keys remove ID` (ID: 1 to 8 hex digits, as `keys list` shows). */
function keysOperands(operands: readonly string[]): {
  action: KeysAction;
  id: number | undefined;
} {
  const [action, id, ...rest] = operands;
  if (action !== 'list' && action !== 'rotate' && action !== 'remove') {
    const got = action === undefined ? 'nothing' : JSON.stringify(action);
    throw new UsageError(`keys needs list, rotate or remove, got ${got}`, 'keys');
  }
  const more = action === 'remove' ? rest : [id, ...rest].filter((x) => x !== undefined);
  if (more.length > 0) throw new UsageError(`keys: unexpected argument: ${more[0]}`, 'keys');
  if (action !== 'remove') return { action, id: undefined };
  if (id === undefined || !/^[0-9a-fA-F]{1,8}$/.test(id)) {
    throw new UsageError('keys remove needs a key ID: 8 hex digits, as keys list shows', 'keys');
  }
  return { action, id: Number.parseInt(id, 16) };
}

/** The options each sync action reads; any other is refused rather than ignored. */
const SYNC_OPTIONS: Record<SyncAction, readonly string[]> = {
  export: ['out', 'passphrase-file', 'recipient', 'force'],
  import: ['passphrase-file', 'verify-only'],
  keygen: [],
};

/** `sync export`, `sync import FILE`, `sync keygen`. */
function syncOperands(
  operands: readonly string[],
  values: Record<string, unknown>,
): { action: SyncAction; file: string | undefined } {
  const [action, file, ...rest] = operands;
  if (action !== 'export' && action !== 'import' && action !== 'keygen') {
    const got = action === undefined ? 'nothing' : JSON.stringify(action);
    throw new UsageError(`sync needs export, import or keygen, got ${got}`, 'sync');
  }
  const more = action === 'import' ? rest : [file, ...rest].filter((x) => x !== undefined);
  if (more.length > 0) throw new UsageError(`sync: unexpected argument: ${more[0]}`, 'sync');
  if (action === 'import' && file === undefined) {
    throw new UsageError('sync import needs a FILE', 'sync');
  }
  for (const name of ['out', 'passphrase-file', 'recipient', 'force', 'verify-only']) {
    if (values[name] !== undefined && !SYNC_OPTIONS[action].includes(name)) {
      throw new UsageError(`sync ${action} does not take --${name}`, 'sync');
    }
  }
  if (values['passphrase-file'] !== undefined && values.recipient !== undefined) {
    throw new UsageError('sync export takes --passphrase-file or --recipient, not both', 'sync');
  }
  return { action, file: action === 'import' ? file : undefined };
}

/** `totp reset USER` / `totp remove USER`. */
function totpOperands(operands: readonly string[]): { action: TotpAction; user: string } {
  const [action, user, ...rest] = operands;
  if (action !== 'reset' && action !== 'remove') {
    const got = action === undefined ? 'nothing' : JSON.stringify(action);
    throw new UsageError(`totp needs reset or remove, got ${got}`, 'totp');
  }
  if (user === undefined) throw new UsageError(`totp ${action} needs a USER`, 'totp');
  if (rest.length > 0) throw new UsageError(`totp: unexpected argument: ${rest[0]}`, 'totp');
  const problem = usernameProblem(user);
  if (problem) throw new UsageError(`USER ${JSON.stringify(user)}: ${problem}`, 'totp');
  return { action, user };
}

/** `unban` lifts one ban: exactly one of --user and --ip, each well-formed. */
function checkUnbanTarget(user: string | undefined, ip: string | undefined): void {
  if (user === undefined && ip === undefined) {
    throw new UsageError('unban needs --user NAME or --ip ADDR', 'unban');
  }
  if (user !== undefined && ip !== undefined) {
    throw new UsageError('unban takes --user or --ip, not both', 'unban');
  }
  if (user !== undefined) {
    const problem = usernameProblem(user);
    if (problem) throw new UsageError(`--user ${JSON.stringify(user)}: ${problem}`, 'unban');
  }
  if (ip !== undefined) {
    try {
      parseIpEntry(ip);
    } catch {
      throw new UsageError(`--ip ${JSON.stringify(ip)} is not an IP address or CIDR`, 'unban');
    }
  }
}

/** `prepare --user NAME` goes to useradd: a portable system account name, or a usage error. */
function checkSystemUser(user: string | undefined): void {
  if (user === undefined || SYSTEM_NAME.test(user)) return;
  throw new UsageError(
    `--user ${JSON.stringify(user)}: a system user name is a lower-case letter or _, then up to 31 lower-case letters, digits, _ or -`,
    'prepare',
  );
}

/** 0-2 are stdin, stdout and stderr: the readiness fd is closed after its line is written. */
function readyFd(value: string | undefined, topic: CommandName): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 3) {
    throw new UsageError(
      `--ready-fd expects a file descriptor number of 3 or more, got ${value}`,
      topic,
    );
  }
  try {
    fstatSync(Number(value));
  } catch {
    // Found now rather than after a whole first start, when the readiness line is written.
    throw new UsageError(`--ready-fd ${value} is not an open file descriptor`, topic);
  }
  return Number(value);
}

function parseStrict(args: string[], topic: CommandName | undefined) {
  try {
    return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // Node's messages go on about `--` for a positional starting with '-': keep the first
    // sentence, which names the option.
    const message = (err as Error).message.split(/(?<=\.) /)[0] ?? String(err);
    throw new UsageError(message, topic);
  }
}

function unknownCommand(word: string): UsageError {
  return new UsageError(`unknown command: ${word}`, undefined);
}

/** What stderr gets for a usage error: the problem, then where to look. */
export function usageMessage(err: UsageError): string {
  if (err.topic === undefined) {
    return (
      `proxyauth: ${err.message}\n` +
      'Usage: proxyauth [COMMAND] [OPTIONS]\n' +
      `Commands: ${COMMAND_NAMES.join(', ')}. See 'proxyauth help'.\n`
    );
  }
  return (
    `proxyauth: ${err.message}\n` +
    `Usage: ${COMMANDS[err.topic].usage}\n` +
    `See 'proxyauth help ${err.topic}'.\n`
  );
}
