import { fstatSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CodedError } from '../shared/coded-error.js';
import { parseIpEntry } from '../shared/ip-match.js';
import { usernameProblem } from '../shared/username.js';
import { COMMAND_NAMES, COMMANDS, type CommandName, isCommand } from './help.js';
import type { TotpAction } from './totp-command.js';

export type CliArgs =
  | {
      command: Exclude<CommandName, 'help'>;
      configDir: string | undefined;
      dataDir: string | undefined;
      /** `--ready-fd N`: where `run` writes its readiness line (supervisor/ready-signal.ts). */
      readyFd: number | undefined;
      /** `stats --user NAME`, `unban --user NAME`. */
      user: string | undefined;
      /** `unban --ip ADDR`: an IP address or CIDR (checked, as written). */
      ip: string | undefined;
      /** `stats --json`, `totp reset --json`. */
      json: boolean;
      /** `totp ACTION USER`: the operands, checked. */
      totp: { action: TotpAction; user: string } | undefined;
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
  if (command === 'totp') {
    totp = totpOperands(extra);
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
  return {
    command,
    configDir: values['config-dir'],
    dataDir: values['data-dir'],
    readyFd: readyFd(values['ready-fd'], command),
    user: values.user,
    ip: values.ip,
    json: values.json === true,
    totp,
  };
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
