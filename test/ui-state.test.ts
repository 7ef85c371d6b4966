// The live view's tree for the pools of processes: a node per worker — under the master for
// prefork and reuseport, under Node for cluster — each of /proc's children of the server's pid,
// and a live connection under the worker that serves it.
import { startServer, type Model, type PosixServer } from '../lib';
import { Recorder } from '../lib/trace/recording';
import { LiveState } from '../lib/ui/state';
import { childrenOf, Client, waitFor } from './helpers';

let server: PosixServer | undefined;
let client: Client | undefined;
let state: LiveState | undefined;
afterEach(async () => {
  client?.destroy();
  state?.stop();
  await server?.close({ timeoutMs: 0 });
  client = state = server = undefined;
});

describe.each([
  ['prefork', 'master'],
  ['reuseport', 'master'],
  ['cluster', 'node'],
] as const)('%s: the workers hang under %s', (model: Model, parent: string) => {
  test('a node per worker, and the connection under the worker serving it', async () => {
    const recorder = new Recorder();
    server = await startServer({ model, workers: 2 });
    const rec = recorder.attach(server, { model, workers: 2 });
    state = new LiveState(
      recorder,
      'en',
      () => undefined,
      () => undefined,
      50,
    );
    await waitFor(() => childrenOf(server!.pid).length === 2, 5000, 'two workers');
    client = await Client.open(server.address()!.port);
    await waitFor(() => (state!.view(rec.index)?.rows.length ?? 0) === 1, 5000, 'the connection row');
    const tree = state.view(rec.index)!.tree;
    const workers = tree.filter((n) => n.kind === 'cluster-worker');
    expect(workers.map((w) => w.pid).sort()).toEqual(
      childrenOf(server.pid)
        .map((c) => c.pid)
        .sort(),
    );
    for (const w of workers) {
      expect(w.parent).toBe(parent);
      expect(w.label).toBe(`worker, pid ${w.pid}`);
    }
    const conn = tree.find((n) => n.kind === 'connection')!;
    expect(conn.parent).toBe(`w:${conn.pid}`);
    expect(workers.map((w) => w.key)).toContain(conn.parent);
  });
});
