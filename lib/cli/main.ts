#!/usr/bin/env node
// posix-servers: serve a model, benchmark them side by side, run the lecture's labs, or check
// anyone's echo server.
//
// Conventions: `--version`/`-v`; `--help`/`-h` on every command (and `help <command>`); errors
// are one line on stderr and exit code 1 (check's are exit code 2, as grep's and diff's: its 1
// means the server failed); output to a pipe that closes (`| head -1`) ends the command quietly. Nothing here loads the addon: a command does when it starts a server or a
// load (lib/addon.ts), so help and version work where it cannot load.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH, benchMain } from './bench';
import { CHECK, checkMain } from './check';
import { Command, commandHelp, UsageError } from './flags';
import { LAB, labMain } from './lab';
import { SERVE, serveMain } from './serve';
import { PACKAGE_ROOT } from '../paths';
import { formatTrace } from '../trace/format';

interface Entry {
  command: Command;
  main: (argv: string[]) => Promise<number>;
}

/** The commands, in the order the help lists them. */
const COMMANDS: Entry[] = [
  { command: SERVE, main: (argv) => serveMain(argv, formatTrace) },
  { command: BENCH, main: benchMain },
  { command: LAB, main: (argv) => labMain(argv) },
  { command: CHECK, main: checkMain },
];

function version(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.command.name.length));
  return `posix-servers ${version()}: genuine POSIX TCP servers (fork, thread, iterative, prethread, epoll) and Node's own, to run, compare and learn.

Usage: posix-servers <command> [flags]

Commands:
${COMMANDS.map((c) => `  ${c.command.name.padEnd(width)}  ${c.command.summary}`).join('\n')}

  posix-servers <command> --help   the command's flags
  posix-servers --version          the version

Examples:
  posix-servers serve --model fork --port 9000        then: nc 127.0.0.1 9000
  posix-servers serve --model thread --trace --port 9000
  posix-servers bench --models fork,thread,ref-fork --connections 1,50
  posix-servers lab zombies --lang zh
  posix-servers lab zombies --svg zombies.svg         the trace as a sequence diagram
  posix-servers serve --model thread --ui             then open the live view it prints
  posix-servers check 127.0.0.1:9000 --pid 4242 --max-clients 100
`;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  switch (first) {
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(usage());
      return 0;
    case '--version':
    case '-v':
      process.stdout.write(`${version()}\n`);
      return 0;
    case 'help': {
      const entry = COMMANDS.find((c) => c.command.name === rest[0]);
      process.stdout.write(entry ? commandHelp(entry.command) : usage());
      return 0;
    }
  }
  const entry = COMMANDS.find((c) => c.command.name === first);
  if (!entry) {
    const what = first.startsWith('-') ? `unknown flag '${first}'` : `unknown command '${first}'`;
    throw new UsageError(`${what} (try 'posix-servers --help')`);
  }
  return entry.main(rest);
}

// A reader that went away (`posix-servers lab fork | head -1`) is not an error: stop quietly, as
// a program killed by SIGPIPE would (Node ignores SIGPIPE, so writes fail with EPIPE instead).
// Exit code 0: `head` got what it wanted. A server or lab still running is torn down with Node.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`posix-servers: ${e.message}\n`);
    process.exit(1);
  },
);
