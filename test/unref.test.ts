// server.unref(), as net.Server's: a Node process whose only work is an unref'd server exits by
// itself, for every model, and leaves no process of the server behind. ref() puts it back.
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { MODELS } from '../lib';
import { isAlive, sleep, waitFor } from './helpers';

const FIXTURE = join(__dirname, 'fixtures', 'unref-server.js');

interface Started {
  child: ChildProcess;
  processes: number[];
  exit: Promise<number | null>;
  stderr: () => string;
}

async function startFixture(model: string, mode: 'unref' | 'ref', client: boolean): Promise<Started> {
  const child = spawn(process.execPath, [FIXTURE, model, mode, client ? 'client' : 'none'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(() => out.includes('\n') || child.exitCode !== null, 15000, 'the fixture to report its processes');
  if (!out.includes('\n')) throw new Error(`the fixture failed: ${err}`);
  const { processes } = JSON.parse(out.split('\n')[0]) as { processes: number[] };
  return { child, processes, exit, stderr: () => err };
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe.each(MODELS)('%s model', (model) => {
  // A connection of the node model is a Node socket of its own, which keeps Node alive while it
  // is served (as with net.Server); every other model serves it outside Node's event loop.
  const client = model !== 'node';

  test(`a process with only an unref'd server${client ? ' (serving a client)' : ''} exits by itself, leaving no process behind`, async () => {
    const f = await startFixture(model, 'unref', client);
    running.push(f.child);
    if (model === 'fork') expect(f.processes.length).toBe(client ? 2 : 1); // the master (and the child serving the client)
    if (model === 'cluster') expect(f.processes.length).toBe(2); // the workers
    if (model === 'prefork' || model === 'reuseport') expect(f.processes.length).toBe(3); // the master and its 2 workers
    let timer: NodeJS.Timeout | undefined;
    const tooLong = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running after 10 s'), 10000)));
    const code = await Promise.race([f.exit, tooLong]);
    clearTimeout(timer);
    expect({ code, stderr: f.stderr() }).toEqual({ code: 0, stderr: '' });
    // The master (its children follow it), the cluster workers (their IPC channel closed).
    await waitFor(() => f.processes.every((pid) => !isAlive(pid)), 5000, 'the server processes to be gone');
  });

  test('ref() after unref() keeps it alive', async () => {
    const f = await startFixture(model, 'ref', false);
    running.push(f.child);
    await sleep(1000);
    expect(f.child.exitCode).toBeNull();
    f.child.kill('SIGTERM');
    await f.exit;
    await waitFor(() => f.processes.every((pid) => !isAlive(pid)), 5000, 'the server processes to be gone');
  });
});
