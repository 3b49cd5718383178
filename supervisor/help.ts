type Option =
  | 'config-dir'
  | 'data-dir'
  | 'ready-fd'
  | 'user'
  | 'ip'
  | 'json'
  | 'out'
  | 'passphrase-file'
  | 'recipient'
  | 'force'
  | 'verify-only'
  | 'header'
  | 'body'
  | 'token'
  | 'cookie';

interface CommandHelp {
  summary: string;
  usage: string;
  details: string;
  /** The options the command reads (every command also takes --help and --version). */
  options: readonly Option[];
  /** Option lines of this command's help that say more than the shared ones. */
  optionLines?: Partial<Record<Option, string>>;
}

/**
 * The commands `proxyauth` has, and their help texts. Only what exists is listed: a command
 * that a later issue will add must be an unknown command until then, not a name that parses
 * and does nothing.
 */
export const COMMANDS = {
  run: {
    summary: 'start the gateway (supervisor + edges); the default command',
    usage: 'proxyauth [run] [--config-dir DIR] [--data-dir DIR] [--ready-fd N]',
    details: `On an empty config dir the first start writes config.json (printing the admin
password once) and an example routes.yml. SIGHUP, or any change to config.json or
routes.yml, reloads; SIGTERM/SIGINT drain requests in flight (at most 10 s) and exit 0.
Exit status: 0 after a clean stop, 1 when the configuration is invalid or the start fails.`,
    options: ['config-dir', 'data-dir', 'ready-fd'],
  },
  'check-config': {
    summary: 'validate config.json and routes.yml; exit 1 on any error',
    usage: 'proxyauth check-config [--config-dir DIR]',
    details: `Prints every error as "file: key: rule" on stderr and warnings as "warning: ...".
Nothing is written. Exit status: 0 when valid (warnings allowed), 1 otherwise.`,
    options: ['config-dir'],
  },
  stats: {
    summary: "print the node's issued tokens and their use counts (read-only)",
    usage: 'proxyauth stats [--data-dir DIR] [--user NAME] [--json]',
    details: `Reads the store in the data dir directly (read-only; the gateway may be running),
so it needs neither the admin token nor the gateway's address. Lists every unexpired token:
user, token id, uses (counted when "stats": true; flushed every second), issued, expires
(UTC). --json prints the /adm/stats shape. Exit status: 0, or 1 when there is no store.`,
    options: ['data-dir', 'user', 'json'],
  },
  unban: {
    summary: 'lift the login ban (brute-force lockout) of a user or an IP address',
    usage: 'proxyauth unban --user NAME | --ip ADDR [--data-dir DIR] [--config-dir DIR]',
    details: `Removes the ban from the store in the data dir and prints one line per ban lifted, or
"no ban in force for ...". It may run while the gateway runs: the next login attempt sees the
change, no restart or reload needed. --ip takes an address or a CIDR in any spelling and lifts
every IP ban that shares an address with it: the ban of that address, of the IPv6 /64 (or
other network) that holds it, or, for a CIDR, of every address and network inside it.
--config-dir is accepted like run's; the bans live in the data dir only.
Exit status: 0 (whether or not there was a ban), 1 when there is no store or it fails.`,
    options: ['user', 'ip', 'data-dir', 'config-dir'],
    optionLines: {
      user: '  --user NAME        the user to unban (exactly one of --user and --ip)',
      'config-dir': "  --config-dir DIR   accepted like run's; not read (env PROXYAUTH_CONFIG_DIR)",
    },
  },
  totp: {
    summary: "reset (a new secret) or remove a user's TOTP secret in the store",
    usage: 'proxyauth totp reset|remove USER [--config-dir DIR] [--data-dir DIR] [--json]',
    details: `reset: a new secret (SHA1, 6 digits, 30 s) replaces the user's secret, if any; it is
sealed with a key derived from config.json's secret (the user must be in config.json) and
printed once: otpauth URI, base32 key and a QR code for the terminal (--json: one JSON line,
no QR code). remove: the user's secret leaves the store (a plaintext one in config.json then
applies again). Both may run while the gateway runs: the next login sees the change, no
restart or reload needed. The store is never created here.
Exit status: 0 done (also when remove found no secret), 1 when the config, the user or the
store is not usable, 2 for a usage error.`,
    options: ['config-dir', 'data-dir', 'json'],
    optionLines: {
      json: '  --json             reset: print {"username","otpauth_uri","otpkey"} on one line',
    },
  },
  keys: {
    summary: 'list, rotate or remove the token signing keys (the key ring)',
    usage: 'proxyauth keys list|rotate|remove [ID] [--config-dir DIR] [--data-dir DIR]',
    details: `list: every key of the ring in the store: id (8 hex digits, the key id in tokens), source
(config, generated, imported), state (active, verify-only, expired, removed) and times (UTC);
never the key material. rotate: a new random 32-byte key becomes the active key; the one
before verifies its tokens until they expire (token_expiry_seconds). remove ID: the key's
tokens stop verifying (the active key cannot be removed: rotate first). All three may run
while the gateway runs; rotate and remove take effect at the next reload (SIGHUP,
systemctl reload proxyauth). The store is never created here.
Exit status: 0 done, 1 refused (a stable code in the message), 2 for a usage error.`,
    options: ['config-dir', 'data-dir'],
  },
  sync: {
    summary: 'share the key ring with other nodes: export, import, keygen',
    usage:
      'proxyauth sync export [--out FILE] [--passphrase-file F | --recipient KEY.asc] [--force]\n' +
      '       proxyauth sync import FILE [--passphrase-file F] [--verify-only]\n' +
      '       proxyauth sync keygen [--data-dir DIR]',
    details: `export: writes the keys in force (and token_expiry_seconds) as an OpenPGP message,
0600, to ./proxyauth-keys.pgp or --out (never over a file, unless --force), encrypted to a
passphrase (--passphrase-file, else typed twice on the terminal) or to a node's public key
(--recipient; signed with this node's key, so run keygen first). Never users, passwords,
token_admin or TOTP secrets. import: decrypts and checks the bundle, installs its keys in one
transaction and makes the exporter's active key active here (--verify-only: only accept its
tokens); a file for this node's key needs the sender's public key in <config dir>/sync-trusted/.
keygen: makes this node's key pair once (private key in the data dir, 0600) and prints the
public key for the other nodes' --recipient. Files dropped in <config dir>/import/ (*.pgp,
encrypted to this node) are imported at start and reload. Changes take effect at the next
reload. Exit status: 0 done, 1 refused (nothing changed; a stable code in the message).`,
    options: [
      'config-dir',
      'data-dir',
      'out',
      'passphrase-file',
      'recipient',
      'force',
      'verify-only',
    ],
  },
  'hash-password': {
    summary: 'read a password from stdin (or a silent prompt) and print its argon2id hash',
    usage: 'proxyauth hash-password',
    details: `Reads all of stdin when it is a pipe, one line without echo when it is a terminal.
Exit status: 0 with the hash on stdout, 1 for an empty password.`,
    options: [],
  },
  prepare: {
    summary: 'as root: create the proxyauth system user and its config and data dirs',
    usage: 'proxyauth prepare [--config-dir DIR] [--data-dir DIR] [--user NAME]',
    details: `Creates what the systemd unit expects before its first start: the system group and user
NAME (default proxyauth; home the data dir, not created by useradd; shell nologin), and the
config and data dirs, each NAME:NAME 0700 (missing parents: root:root 0755). A dir already
NAME's keeps its contents; its group and mode are set. A dir of root's (e.g. from a
\`proxyauth run\` as root) is given to NAME with its contents. Refused, before anything
changes: a dir of another user, a symlink, a hard link or special file inside a dir to take
over, a parent that is not root's or that others may write to, a user NAME with uid 0.
Prints one line per item: created, changed, or already there; a second run changes nothing.
config.json is not written (the first start does it).
Exit status: 0 done, 1 not root or refused (a stable code in the message), 2 usage error.`,
    options: ['config-dir', 'data-dir', 'user'],
    optionLines: {
      user: '  --user NAME        the system user and group to create and own the dirs (proxyauth)',
    },
  },
  explain: {
    summary: 'show what the gateway would do with a request, and why (nothing is sent)',
    usage:
      "proxyauth explain [--user NAME | --token TOKEN] [--cookie] METHOD URL [-H 'Name: value']...\n" +
      '       [--body FILE] [--ip ADDR] [--json] [--config-dir DIR] [--data-dir DIR]',
    details: `Runs the request through the edges' own code on the config dir and the store (read-only):
canonical path, gateway endpoints, each route and why it did or did not match, the fold
check, each check of the route in order with its verdict, the rate-limit settings, the
upstream URL and headers it would be sent with, and the answer (status and error code).
URL is a path (/api/x?q=1; Host: localhost unless -H gives one) or an http(s):// URL (its
host is the Host header). --user mints a token for NAME in memory, as POST /auth would;
--token uses TOKEN (- reads it from stdin, out of the process list); neither is printed,
only the token id. --cookie sends it as the session_token cookie instead of a Bearer header.
Nothing is sent upstream, no rate-limit token and no CSRF token is spent, gateway endpoints
(/auth, /logout, /adm/...) are reached but not run.
Exit status: 0 when the request was explained (whatever the verdict), 1 when the config,
the store or --user/--body cannot be used, 2 for a usage error.`,
    options: ['config-dir', 'data-dir', 'user', 'token', 'cookie', 'header', 'body', 'ip', 'json'],
    optionLines: {
      user: '  --user NAME        mint a token for this user of config.json (in memory)',
      ip: '  --ip ADDR          the client (socket peer) address (default 127.0.0.1)',
      json: '  --json             one JSON document instead of the report',
    },
  },
  help: {
    summary: "this text, or one command's help with `proxyauth help COMMAND`",
    usage: 'proxyauth help [COMMAND]',
    details: '',
    options: [],
  },
} as const satisfies Record<string, CommandHelp>;

export type CommandName = keyof typeof COMMANDS;

export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

const OPTION_LINES: Record<Option | 'help' | 'version', string> = {
  'config-dir':
    '  --config-dir DIR   config.json, routes.yml and certs/ (env PROXYAUTH_CONFIG_DIR)',
  'data-dir': '  --data-dir DIR     the LMDB environment (env PROXYAUTH_DATA_DIR)',
  'ready-fd':
    '  --ready-fd N       once every edge listens, write one JSON line to fd N (3 or more)\n' +
    '                     and close it: {"ready":true,"port":...,"edges":[...]}, or\n' +
    '                     {"ready":false,"code":...,"error":...} when the start fails',
  user: '  --user NAME        only this user',
  ip: '  --ip ADDR          the IP address or CIDR to unban (exactly one of --user and --ip)',
  json: '  --json             JSON (the /adm/stats shape) instead of a table',
  out: '  --out FILE         export: where to write (default ./proxyauth-keys.pgp)',
  'passphrase-file':
    '  --passphrase-file F  the passphrase is the content of F (one trailing newline dropped)',
  recipient: "  --recipient KEY.asc  export: encrypt to that node's public key (its sync keygen)",
  force: '  --force            export: replace an existing output file',
  'verify-only':
    "  --verify-only      import: accept the keys' tokens, keep this node's active key",
  header: "  -H, --header 'Name: value'  a request header line (repeatable, in order)",
  body: '  --body FILE        the request body (- for stdin); Content-Length is added',
  token: '  --token TOKEN      a token of ours to send (- reads it from stdin)',
  cookie: '  --cookie           send the credential as the session_token cookie',
  help: "  -h, --help         this text (after a command: that command's help)",
  version: '  -v, -V, --version  the version',
};

const DIR_DEFAULTS = `Defaults: /etc/proxyauth/config and /var/lib/proxyauth as root; otherwise
$XDG_CONFIG_HOME/proxyauth (~/.config/proxyauth) and $XDG_DATA_HOME/proxyauth (~/.local/share/proxyauth).
A flag beats the environment variable.`;

/** The general help (no topic) or one command's help, each ending with a newline. */
export function helpText(topic?: CommandName): string {
  return topic === undefined ? generalHelp() : commandHelp(topic);
}

function commandHelp(topic: CommandName): string {
  const { usage, summary, details, options, optionLines } = COMMANDS[topic] as CommandHelp;
  const parts = [`Usage: ${usage}`, `${capitalize(summary)}.`];
  if (details) parts.push(details);
  parts.push(optionList([...options, 'help', 'version'], optionLines));
  if (options.length > 0) parts.push(DIR_DEFAULTS);
  return `${parts.join('\n\n')}\n`;
}

function generalHelp(): string {
  const width = Math.max(...COMMAND_NAMES.map((name) => name.length)) + 2;
  const rows = COMMAND_NAMES.map((name) => `  ${name.padEnd(width)}${COMMANDS[name].summary}`);
  return `Usage: proxyauth [COMMAND] [OPTIONS]

Commands:
${rows.join('\n')}

${optionList(['config-dir', 'data-dir', 'help', 'version'])}

${DIR_DEFAULTS}
Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT drain and stop.
Exit status: 0 success, 1 failure, 2 usage error.
`;
}

function optionList(
  names: readonly (keyof typeof OPTION_LINES)[],
  own: Partial<Record<string, string>> = {},
): string {
  return ['Options:', ...names.map((name) => own[name] ?? OPTION_LINES[name])].join('\n');
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
