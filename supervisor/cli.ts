#!/usr/bin/env node
import { flushLogs } from '../shared/log.js';
import { HELP, parseCliArgs, UsageError } from './args.js';
import { checkConfig } from './check-config.js';
import { resolveDirs } from './dirs.js';
import { hashPasswordCommand } from './hash-password.js';
import { serve } from './serve.js';
import { packageVersion } from './version.js';

async function main(argv: readonly string[]): Promise<number> {
  const args = parseCliArgs(argv);
  const dirs = resolveDirs(args, process.env, process.getuid?.() === 0);
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
      process.stdout.write(`proxyauth ${packageVersion()}\n`);
      return 0;
    case 'check-config':
      return checkConfig(dirs);
    case 'hash-password':
      return hashPasswordCommand(process.stdin, process.stdout, process.stderr);
    case 'run':
      return serve(dirs, { readyFd: args.readyFd });
  }
}

main(process.argv.slice(2)).then(
  async (code) => {
    await flushLogs();
    process.exit(code);
  },
  async (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`proxyauth: ${err.message}\n\n${HELP}`);
      process.exit(2);
    }
    process.stderr.write(
      `proxyauth: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    await flushLogs();
    process.exit(1);
  },
);
