// Host names as Node's net.Server takes them (lib/util/host.ts): startServer's `host` in every
// model, `serve --host` and `check HOST:PORT`, each held against net.Server#listen in the same test.
//
// Names other than this machine's `localhost` are looked up in a sandbox only: a mount namespace
// whose /etc/nsswitch.conf says `hosts: files` and whose /etc/hosts the test writes, so that no
// lookup asks a DNS server (no packet leaves the machine) and the answers do not depend on it.
// The bind to 0.0.0.0 runs in a network namespace of its own, where every address is loopback's.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODELS, startServer } from '../lib';
import { exchange, optionsFor } from './helpers';

jest.setTimeout(60000);

const ROOT = join(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const NOWHERE = 'no.such.host.invalid';

function netListens(host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address() as AddressInfo;
      s.close(() => resolve(a));
    });
  });
}

describe.each(MODELS)('%s model', (model) => {
  test("host 'localhost' binds the address net.Server#listen binds for it; address() is numeric; it serves", async () => {
    const node = await netListens('localhost');
    const server = await startServer(optionsFor(model, { host: 'localhost' }));
    try {
      const a = server.address()!;
      expect({ address: a.address, family: a.family }).toEqual({ address: node.address, family: node.family });
      expect((await exchange(a.port, 'by name', 10000, a.address)).toString()).toBe('by name');
    } finally {
      await server.close();
    }
  });
});

/** Runs `argv` with /etc/hosts = `hosts` and name lookups in files only; `net`: in a network namespace of its own too. */
function sandboxed(
  hosts: string,
  argv: string[],
  opts: { net?: boolean } = {},
): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ps-resolver-'));
  try {
    writeFileSync(join(dir, 'hosts'), hosts);
    writeFileSync(join(dir, 'nsswitch.conf'), 'hosts: files\n');
    const script = [
      'set -e',
      `mount --bind "${dir}/hosts" /etc/hosts`,
      `mount --bind "${dir}/nsswitch.conf" /etc/nsswitch.conf`,
      ...(opts.net ? ['ip link set lo up'] : []),
      'exec "$@"',
    ].join('\n');
    const as = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
    const r = spawnSync(
      'unshare',
      [...as, '--mount', '--propagation', 'private', ...(opts.net ? ['--net'] : []), 'sh', '-c', script, 'sh', ...argv],
      { encoding: 'utf8', timeout: 50000 },
    );
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BOTH = '::1 localhost\n127.0.0.1 localhost\n';

describe('in a resolver sandbox: as net.Server, whatever the order and the answer', () => {
  const compare = (host: string, order: string) => {
    const r = sandboxed(BOTH, [
      process.execPath,
      join(__dirname, 'fixtures', 'resolve-like-net.js'),
      host,
      order,
      MODELS.join(','),
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return JSON.parse(r.stdout) as { net: Record<string, unknown>; models: Record<string, Record<string, unknown>> };
  };

  test('localhost listed as ::1 and 127.0.0.1: every model binds the family net.Server picks, in each dns result order', () => {
    const picked: Record<string, unknown> = {};
    for (const order of ['verbatim', 'ipv4first', 'ipv6first']) {
      const { net, models } = compare('localhost', order);
      expect(net).toHaveProperty('address');
      for (const model of MODELS) expect([model, models[model]]).toEqual([model, net]);
      picked[order] = net;
    }
    // The orders did pick differently: the servers followed Node's choice, not a fixed family.
    expect(picked.ipv4first).toEqual({ address: '127.0.0.1', family: 'IPv4' });
    expect(picked.ipv6first).toEqual({ address: '::1', family: 'IPv6' });
  });

  test("a name that does not resolve: every model rejects with net.Server's own error (ENOTFOUND, getaddrinfo, hostname)", () => {
    const { net, models } = compare(NOWHERE, 'verbatim');
    expect(net).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: NOWHERE });
    expect(net.message).toBe(`getaddrinfo ENOTFOUND ${NOWHERE}`);
    for (const model of MODELS) expect([model, models[model]]).toEqual([model, net]);
  });

  test('serve --host and check HOST:PORT with a name that does not resolve: one line on stderr, exit 1 (check: 2, no verdict)', () => {
    const serve = sandboxed(BOTH, [process.execPath, CLI, 'serve', '--model', 'thread', '--host', NOWHERE, '--port', '0']);
    expect([serve.status, serve.stderr]).toEqual([1, `posix-servers: getaddrinfo ENOTFOUND ${NOWHERE}\n`]);
    const check = sandboxed(BOTH, [process.execPath, CLI, 'check', `${NOWHERE}:7`]);
    expect([check.status, check.stderr]).toEqual([2, `posix-servers check: getaddrinfo ENOTFOUND ${NOWHERE}\n`]);
  });

  test('check localhost:PORT reaches a server on 127.0.0.1 although localhost is ::1 first, as a Node client does', () => {
    // Inside the sandbox: a server on 127.0.0.1 only, then `check localhost:PORT` against it.
    const script = `
      const { startServer } = require(${JSON.stringify(join(ROOT, 'dist'))});
      const { spawnSync } = require('node:child_process');
      const { lookup } = require('node:dns/promises');
      (async () => {
        const first = await lookup('localhost');
        const server = await startServer({ model: 'thread', host: '127.0.0.1' });
        const port = server.address().port;
        const r = spawnSync(process.execPath, [${JSON.stringify(CLI)}, 'check', 'localhost:' + port, '--json'], { encoding: 'utf8' });
        await server.close();
        console.log(JSON.stringify({ first, status: r.status, stderr: r.stderr, report: JSON.parse(r.stdout || 'null') }));
      })();`;
    const r = sandboxed(BOTH, [process.execPath, '-e', script]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.first).toEqual({ address: '::1', family: 6 });
    expect(out.stderr).toBe('');
    expect(out.report.target).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(out.report.results.filter((c: { status: string }) => c.status === 'fail')).toEqual([]);
    expect(out.status).toBe(0);
  });
});

describe('serve --host', () => {
  function serveLines(args: string[]): Promise<{ lines: string[]; stop: () => Promise<number | null> }> {
    const child = spawn(process.execPath, [CLI, 'serve', '--model', 'fork', '--port', '0', ...args]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => {
        if (out.split('\n').length > 2) {
          clearInterval(poll);
          resolve({
            lines: out.split('\n'),
            stop: () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
        }
      }, 20);
      void exited.then((code) => {
        clearInterval(poll);
        reject(new Error(`serve exited (${code}) before listening: ${out}`));
      });
    });
  }

  test('localhost: listens where net.Server would, prints the numeric address and a hint that connects', async () => {
    const node = await netListens('localhost');
    const s = await serveLines(['--host', 'localhost']);
    try {
      const at = node.family === 'IPv6' ? `[${node.address}]` : node.address;
      expect(s.lines[0].startsWith(`fork server listening on ${at}:`)).toBe(true);
      const hint = /^connect with: nc (\S+) (\d+)$/.exec(s.lines[1])!;
      expect(hint[1]).toBe(node.address);
      expect((await exchange(Number(hint[2]), 'hinted', 10000, hint[1])).toString()).toBe('hinted');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  test('0.0.0.0 (in a network namespace of its own): the hint names 127.0.0.1, and nc there reaches the server', () => {
    const script = `
      const { spawn } = require('node:child_process');
      const { connect } = require('node:net');
      const child = spawn(process.execPath, [${JSON.stringify(CLI)}, 'serve', '--model', 'thread', '--host', '0.0.0.0', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      let tried = false;
      child.stdout.on('data', (d) => {
        out += d;
        const m = /connect with: nc (\\S+) (\\d+)\\n/.exec(out);
        if (!m || tried) return;
        tried = true;
        const s = connect(Number(m[2]), m[1], () => s.end('hint works'));
        let reply = '';
        s.on('data', (d) => (reply += d));
        s.on('end', () => { console.log(JSON.stringify({ lines: out.split('\\n').slice(0, 2), host: m[1], reply })); child.kill('SIGTERM'); });
        s.on('error', (e) => { console.log(JSON.stringify({ lines: out.split('\\n'), error: e.message })); child.kill('SIGTERM'); });
      });`;
    const r = sandboxed(BOTH, [process.execPath, '-e', script], { net: true });
    expect(r.stderr).toContain('listening on 0.0.0.0, not loopback');
    const out = JSON.parse(r.stdout);
    expect(out.lines[0]).toMatch(/^thread server listening on 0\.0\.0\.0:\d+ \(pid \d+\)$/);
    expect(out).toMatchObject({ host: '127.0.0.1', reply: 'hint works' });
  });
});
