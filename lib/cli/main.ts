#!/usr/bin/env node
// posix-servers: serve a model, benchmark them side by side, run the lecture's labs, or check
// anyone's echo server.
import { BENCH_USAGE, benchMain } from './bench';
import { CHECK_USAGE, checkMain } from './check';
import { SERVE_USAGE, serveMain } from './serve';
import { LAB_USAGE, labMain } from '../labs';
import { formatTrace } from '../trace/format';

const USAGE = `Genuine POSIX TCP servers (fork, thread, iterative) and Node's own, to run, compare and learn.

Usage:
  ${SERVE_USAGE}
  ${BENCH_USAGE}
  ${LAB_USAGE}
  ${CHECK_USAGE}
  posix-servers help

Examples:
  posix-servers serve --model fork --port 9000        then: nc 127.0.0.1 9000
  posix-servers serve --model thread --trace --port 9000
  posix-servers bench --models fork,thread,ref-fork --connections 1,50
  posix-servers lab zombies --lang zh
  posix-servers lab zombies --svg zombies.svg         the trace as a sequence diagram
  posix-servers serve --model thread --ui             then open the live view it prints
  posix-servers check 127.0.0.1:9000 --pid 4242 --max-clients 100
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    case 'serve':
      return serveMain(rest, formatTrace);
    case 'lab':
      return labMain(rest);
    case 'bench':
      return benchMain(rest);
    case 'check':
      return checkMain(rest);
    default:
      process.stderr.write(`posix-servers: unknown command '${command}' (try 'posix-servers help')\n`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`posix-servers: ${e.message}\n`);
    process.exit(1);
  },
);
