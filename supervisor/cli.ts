#!/usr/bin/env node
import { flushLogs } from '../shared/log.js';
import { type CliArgs, parseCliArgs, UsageError, usageMessage } from './args.js';
import { checkConfig } from './check-config.js';
import { resolveDirs } from './dirs.js';
import { explainCommand } from './explain-command.js';
import { failureMessage } from './failure-message.js';
import { hashPasswordCommand } from './hash-password.js';
import { helpText } from './help.js';
import { keysCommand } from './keys-command.js';
import { DEFAULT_SERVICE_USER, prepareCommand } from './prepare-command.js';
import { serve } from './serve.js';
import { statsCommand } from './stats-command.js';
import { syncCommand } from './sync-command.js';
import { totpCommand } from './totp-command.js';
import { type UnbanTarget, unbanCommand } from './unban-command.js';
import { packageVersion } from './version.js';

/** Exit status: 0 success, 1 failure, 2 usage error (as `proxyauth help` says). */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

async function main(args: CliArgs): Promise<number> {
  switch (args.command) {
    case 'help':
      process.stdout.write(helpText(args.topic));
      return 0;
    case 'version':
      process.stdout.write(`proxyauth ${packageVersion()}\n`);
      return 0;
    case 'check-config':
      return checkConfig(dirsOf(args));
    case 'hash-password':
      return hashPasswordCommand(process.stdin, process.stdout, process.stderr);
    case 'prepare':
      return prepareCommand(dirsOf(args), args.user ?? DEFAULT_SERVICE_USER, {
        isRoot: process.getuid?.() === 0,
        out: process.stdout,
      });
    case 'run':
      return serve(dirsOf(args), { readyFd: args.readyFd });
    case 'stats':
      return statsCommand(
        dirsOf(args).dataDir,
        { user: args.user, json: args.json },
        process.stdout,
        process.stderr,
      );
    case 'unban':
      return unbanCommand(dirsOf(args).dataDir, unbanTarget(args), process.stdout, process.stderr);
    case 'totp': {
      // The parser made sure `totp` carries its operands.
      const { action, user } = args.totp!;
      return totpCommand(dirsOf(args), action, user, {
        out: process.stdout,
        err: process.stderr,
        json: args.json,
      });
    }
    case 'keys': {
      // The parser made sure `keys` carries its operands.
      const { action, id } = args.keys!;
      return keysCommand(dirsOf(args), action, id, { out: process.stdout, err: process.stderr });
    }
    case 'explain':
      // The parser made sure `explain` carries its operands.
      return explainCommand(
        dirsOf(args),
        { ...args.explain!, json: args.json },
        { input: process.stdin, err: process.stderr },
      );
    case 'sync': {
      const { action, file } = args.sync!;
      return syncCommand(
        dirsOf(args),
        action,
        { ...args, file },
        {
          input: process.stdin,
          prompt: process.stderr,
          out: process.stdout,
          err: process.stderr,
        },
      );
    }
  }
}

/** The parser made sure exactly one of --user and --ip is there. */
function unbanTarget(args: { user: string | undefined; ip: string | undefined }): UnbanTarget {
  if (args.user !== undefined) return { kind: 'user', user: args.user };
  return { kind: 'ip', address: args.ip ?? '' };
}

function dirsOf(args: { configDir: string | undefined; dataDir: string | undefined }) {
  return resolveDirs(args, process.env, process.getuid?.() === 0);
}

function parse(argv: readonly string[]): CliArgs | undefined {
  try {
    return parseCliArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(usageMessage(err));
    return undefined;
  }
}

const args = parse(process.argv.slice(2));
if (args === undefined) process.exit(EXIT_USAGE);
main(args).then(
  async (code) => {
    await flushLogs();
    process.exit(code);
  },
  async (err: unknown) => {
    process.stderr.write(`proxyauth: ${failureMessage(err)}\n`);
    await flushLogs();
    process.exit(EXIT_FAILURE);
  },
);
