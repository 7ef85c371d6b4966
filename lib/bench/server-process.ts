// One server model in a process of its own, for the benchmark: the load generator runs in the
// bench's process, so the server side (processes, threads, memory, CPU time) can be measured alone.
// Usage: node dist/bench/server-process.js '<ServerOptions as JSON>'. Prints `listening <port>` once
// listening; for each line `stats` on stdin, prints `stats {"perWorker":[…],"reapedCpuUs":N,"reaped":N}` from
// stats() (the bench reads it before and after a run: how evenly the pool's workers took its
// connections, and the CPU time of the processes its master reaped); SIGTERM closes the server and
// exits.
import { startServer } from '../server/server';

async function main(): Promise<void> {
  const server = await startServer(JSON.parse(process.argv[2] ?? '{}'));
  server.on('error', (e) => console.error(`bench-server: ${e.message}`));
  process.stdout.write(`listening ${server.address()!.port}\n`);
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line !== 'stats') continue;
      const { perWorker, reapedCpuUs, reaped } = server.stats();
      process.stdout.write(`stats ${JSON.stringify({ perWorker, reapedCpuUs, reaped })}\n`);
    }
  });
  // The bench's end of the pipe closing is no reason to stop: SIGTERM is.
  process.stdin.on('error', () => undefined);
  const stop = () => void server.close({ timeoutMs: 0 }).then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e: Error) => {
  console.error(`bench-server: ${e.message}`);
  process.exit(1);
});
