// A stranger's TypeScript, compiled by scripts/check-package.sh against the installed tarball
// twice (module commonjs, and module nodenext) and then run: the package's types and its
// CommonJS entry, as a user sees them.
import { connect } from 'node:net';
import { HANDLERS, MODELS, startServer, type ConnectionEvent, type PosixServer, type ServerOptions } from 'posix-servers';

function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (reply += d));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

// Never called: the types must refuse these.
export function typesRefuse(): void {
  // @ts-expect-error: not a model
  void startServer({ model: 'preforked' });
  // @ts-expect-error: port is a number
  void startServer({ model: 'fork', port: '80' });
}

async function main(): Promise<void> {
  for (const model of ['fork', 'thread'] as const) {
    const options: ServerOptions = { model, port: 0, handler: 'upper', signal: AbortSignal.timeout(60000) };
    const server: PosixServer = await startServer(options);
    const seen: ConnectionEvent[] = [];
    server.on('connection', (c) => seen.push(c));
    const reply = await exchange(server.address()!.port, 'hello');
    if (reply !== 'HELLO') throw new Error(`${model}: replied ${JSON.stringify(reply)}`);
    const same: PosixServer = server.unref().ref();
    await same.close({ timeoutMs: 1000 });
    const stats = server.stats();
    if (stats.accepted !== 1 || stats.closed !== 1 || seen.length !== 1) throw new Error(`${model}: ${JSON.stringify(stats)}`);
    console.log(`consumer: ${model} served and closed; models ${MODELS.join(',')}; handlers ${HANDLERS.join(',')}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
