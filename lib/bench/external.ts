// Servers nobody here wrote, started for the comparison: socat (an echo relay, or a program per
// connection) and xinetd (a program per connection), each on a free loopback port, in the
// foreground, stopped with SIGTERM (SIGKILL after 5 s).
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { EXEC_PROGRAM } from './catalogue';
import type { RunningServer } from './servers';

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

export function socatAvailable(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

export function xinetdAvailable(): boolean {
  return spawnSync('xinetd', ['-version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves once something accepts on 127.0.0.1:port (at most 2 s), else throws naming `what`. */
async function listeningOn(port: number, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} did not start listening`);
}

/** socat with `address` for each connection (PIPE: echo; EXEC:…: a program). */
export async function startSocat(address: string, what: string): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, address], { stdio: 'ignore' });
  try {
    await listeningOn(port, what);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { port, pid: child.pid!, close: () => stopChild(child) };
}

/**
 * xinetd running EXEC_PROGRAM on a loopback port, in the foreground, as the user running the
 * benchmark: xinetd needs no privilege for that when the service's \`user\` is that user and it logs
 * to a file (-filelog), not to syslog. Its limits are lifted (instances, per_source, cps: its
 * default cps of 50 would disable the service for 10 s) and it logs nothing per connection.
 */
export async function startXinetd(): Promise<RunningServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'posix-servers-xinetd-'));
  const conf = join(dir, 'xinetd.conf');
  writeFileSync(
    conf,
    [
      'defaults',
      '{',
      '  instances = UNLIMITED',
      '  per_source = UNLIMITED',
      '  cps = 1000000 1',
      '  log_on_success =',
      '  log_on_failure =',
      '}',
      'service posix-servers-bench',
      '{',
      '  type = UNLISTED',
      '  socket_type = stream',
      '  protocol = tcp',
      '  wait = no',
      `  port = ${port}`,
      '  bind = 127.0.0.1',
      `  server = ${EXEC_PROGRAM}`,
      `  user = ${userInfo().username}`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-dontfork', '-f', conf, '-pidfile', join(dir, 'pid'), '-filelog', join(dir, 'log')];
  const child = spawn('xinetd', args, { stdio: 'ignore' });
  const close = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await listeningOn(port, 'xinetd');
  } catch (e) {
    await close();
    throw e;
  }
  return { port, pid: child.pid!, close };
}
