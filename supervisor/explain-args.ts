import { isIP } from 'node:net';
import { CodedError } from '../shared/coded-error.js';
import { usernameProblem } from '../shared/username.js';

/** `proxyauth explain`'s operands and options, checked. */
export interface ExplainArgs {
  readonly method: string;
  /** Path and query, as on the request line. */
  readonly target: string;
  /** Header lines in order; an absolute URL's host comes first as `host` unless one is given. */
  readonly headers: readonly (readonly [string, string])[];
  /** `--body FILE` (`-`: stdin). */
  readonly bodyFile: string | undefined;
  readonly user: string | undefined;
  /** `--token TOKEN` (`-`: read from stdin). */
  readonly token: string | undefined;
  readonly cookie: boolean;
  readonly ip: string;
}

/** A usage problem of `explain`; args.ts turns it into its UsageError. */
export class ExplainUsageError extends CodedError<'USAGE'> {}

/** RFC 9110 section 5.6.2: a header name is a token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ABSOLUTE = /^(https?):\/\/([^/?#]*)(.*)$/i;

function usage(message: string): never {
  throw new ExplainUsageError('USAGE', message);
}

/** `Name: value` (value trimmed, as HTTP parsers read it). */
export function parseHeaderLine(line: string): [string, string] {
  const colon = line.indexOf(':');
  const name = colon === -1 ? '' : line.slice(0, colon);
  if (!TOKEN.test(name)) usage(`-H ${JSON.stringify(line)}: expected 'Name: value'`);
  return [name, line.slice(colon + 1).trim()];
}

/** The request target and the Host an absolute URL names (undefined for a path). */
export function splitUrl(url: string): { target: string; host: string | undefined } {
  const m = ABSOLUTE.exec(url);
  if (m !== null) {
    const host = m[2]!;
    if (host === '' || host.includes('@'))
      usage(`URL ${JSON.stringify(url)}: needs a host, without user:password@`);
    const rest = m[3]!;
    return { target: rest === '' || rest.startsWith('?') ? `/${rest}` : rest, host };
  }
  if (!url.startsWith('/')) {
    usage(`URL ${JSON.stringify(url)}: a path starting with / or an http(s):// URL`);
  }
  return { target: url, host: undefined };
}

/** Checks `explain METHOD URL` and its options (values as node:util parseArgs gives them). */
export function explainOperands(
  operands: readonly string[],
  values: Record<string, unknown>,
): ExplainArgs {
  const [method, url, ...rest] = operands;
  if (method === undefined || url === undefined) usage('explain needs a METHOD and a URL');
  if (rest.length > 0) usage(`explain: unexpected argument: ${rest[0]}`);
  if (!TOKEN.test(method)) usage(`METHOD ${JSON.stringify(method)} is not a method name`);
  const { target, host } = splitUrl(url);
  const given = ((values.header as string[] | undefined) ?? []).map(parseHeaderLine);
  const hasHost = given.some(([k]) => k.toLowerCase() === 'host');
  const headers = host === undefined || hasHost ? given : [['host', host] as const, ...given];
  const user = values.user as string | undefined;
  const token = values.token as string | undefined;
  if (user !== undefined && token !== undefined) usage('explain takes --user or --token, not both');
  if (user !== undefined) {
    const problem = usernameProblem(user);
    if (problem) usage(`--user ${JSON.stringify(user)}: ${problem}`);
  }
  const cookie = values.cookie === true;
  if (cookie && user === undefined && token === undefined)
    usage('--cookie needs --user or --token');
  const bodyFile = values.body as string | undefined;
  if (token === '-' && bodyFile === '-') usage('--token - and --body - cannot both read stdin');
  const ip = (values.ip as string | undefined) ?? '127.0.0.1';
  if (isIP(ip) === 0) usage(`--ip ${JSON.stringify(ip)} is not an IP address`);
  return { method, target, headers, bodyFile, user, token, cookie, ip };
}
