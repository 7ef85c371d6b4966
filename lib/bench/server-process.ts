// One server model in a process of its own, for the benchmark: the load generator runs in the
// bench's process, so the server side (processes, threads, memory) can be measured alone.
// Usage: node dist/bench/server-process.js '<ServerOptions as JSON>'. Prints `listening <port>` once
// listening; SIGTERM closes the server and exits.
import { startServer } from '../server/server';

async function main(): Promise<void> {
  const server = await startServer(JSON.parse(process.argv[2] ?? '{}'));
  server.on('error', (e) => console.error(`bench-server: ${e.message}`));
  process.stdout.write(`listening ${server.address()!.port}\n`);
  const stop = () => void server.close({ timeoutMs: 0 }).then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e: Error) => {
  console.error(`bench-server: ${e.message}`);
  process.exit(1);
});
