#!/usr/bin/env node
/**
 * The `nestjs-redis-streams-enterprise` operator command (package.json "bin"). Everything is in program.ts; this
 * file wires it to the process: argv, stdout/stderr, REDIS_URL, Ctrl-C, and the exit code.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { CliLogger } from './cli-logger.js';
import { EXIT_INTERRUPTED, runCli } from './program.js';

Logger.overrideLogger(new CliLogger(process.stderr));

let exitCode = 0;
// `… | head` closes stdout early: end quietly instead of crashing with EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(exitCode);
  throw error;
});

let interrupted = false;
exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onInterrupt: (handler) => {
    const onSigint = () => {
      if (interrupted) process.exit(EXIT_INTERRUPTED); // second Ctrl-C: stop waiting for the clean end
      interrupted = true;
      process.stderr.write('\nCancelling (press Ctrl-C again to quit at once)…\n');
      handler();
    };
    // SIGTERM (a process manager stopping a long-running command such as `mirror`) ends it as cleanly as Ctrl-C.
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    return () => {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
    };
  },
});
// No process.exit(): the managers were closed, so the process ends by itself once stdout is flushed.
process.exitCode = exitCode;
