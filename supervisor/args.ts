import { parseArgs } from 'node:util';
import { CodedError } from '../shared/coded-error.js';

export type Command = 'run' | 'check-config' | 'hash-password' | 'help' | 'version';

export interface CliArgs {
  command: Command;
  configDir: string | undefined;
  dataDir: string | undefined;
  /** `--ready-fd N`: where `run` writes its readiness line (supervisor/ready-signal.ts). */
  readyFd?: number | undefined;
}

export class UsageError extends CodedError<'USAGE'> {
  constructor(message: string) {
    super('USAGE', message);
  }
}

const COMMANDS = new Set<string>(['run', 'check-config', 'hash-password']);

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help', configDir: undefined, dataDir: undefined };
  if (values.version) return { command: 'version', configDir: undefined, dataDir: undefined };
  if (positionals.length > 1) throw new UsageError(`unexpected argument: ${positionals[1]}`);
  const command = positionals[0] ?? 'run';
  if (!COMMANDS.has(command)) throw new UsageError(`unknown command: ${command}`);
  return {
    command: command as Command,
    configDir: values['config-dir'],
    dataDir: values['data-dir'],
    readyFd: readyFd(values['ready-fd']),
  };
}

/** 0-2 are stdin, stdout and stderr: the readiness fd is closed after its line is written. */
function readyFd(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 3)
    throw new UsageError(`--ready-fd expects a file descriptor number of 3 or more, got ${value}`);
  return Number(value);
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      'config-dir': { type: 'string' },
      'data-dir': { type: 'string' },
      'ready-fd': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
    },
  });
}

export const HELP = `Usage: proxyauth [command] [options]

Commands:
  run (default)     start the gateway (supervisor + edges)
  check-config      validate config.json and routes.yml; exit 1 on any error
  hash-password     read a password from stdin (or a prompt) and print its argon2id hash

Options:
  --config-dir DIR  config.json, routes.yml and certs/ (env PROXYAUTH_CONFIG_DIR)
  --data-dir DIR    the LMDB environment (env PROXYAUTH_DATA_DIR)
  --ready-fd N      run: once every edge listens, write one JSON line to fd N and close it
                    ({"ready":true,"port":...,"edges":[...]}, or {"ready":false,"error":...})
  -h, --help        this text
  -V, --version     the version

Defaults: /etc/proxyauth/config and /var/lib/proxyauth as root; otherwise
$XDG_CONFIG_HOME/proxyauth (~/.config/proxyauth) and $XDG_DATA_HOME/proxyauth (~/.local/share/proxyauth).
Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT drain and stop.
`;
