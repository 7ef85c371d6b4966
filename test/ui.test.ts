/// <reference lib="dom" />
// The live view in a real browser: headless Chromium (Debian's, or the one an npm package ships:
// test/browser.ts), driven by puppeteer-core. Clients connect and leave; the page's rows appear and
// disappear; the zombies lab shows its zombies.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { launchBrowser, type LaunchedBrowser } from './browser';
import { Client, waitFor } from './helpers';

jest.setTimeout(90000);

const CLI = join(__dirname, '..', 'dist', 'cli', 'main.js');
// UPDATE_UI_SCREENSHOT=1 npx jest test/ui.test.ts refreshes the README's picture.
const SCREENSHOT = join(__dirname, '..', 'docs', 'ui.png');

let launched: LaunchedBrowser | undefined;
let browser: Browser;

beforeAll(async () => {
  launched = await launchBrowser();
  browser = launched.browser;
  // Which browser ran the tests, in the output (scripts/without-system-browser.sh looks for it).
  process.stderr.write(`ui.test.ts: browser ${launched.source}\n`);
});

// Only what beforeAll started: a beforeAll that failed reports its own error and nothing else.
afterAll(async () => {
  await launched?.close();
});

interface Cli {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  exit: Promise<number | null>;
}

const running: Cli[] = [];
afterEach(() => {
  for (const r of running.splice(0)) if (r.child.exitCode === null) r.child.kill('SIGKILL');
});

function cli(args: string[]): Cli {
  const child = spawn(process.execPath, [CLI, ...args]);
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const r = { child, lines, exit };
  running.push(r);
  return r;
}

const count = (page: Page, selector: string) => page.$$eval(selector, (els) => els.length);

async function waitCount(page: Page, selector: string, n: number): Promise<void> {
  await page.waitForFunction(
    (s, k) => document.querySelectorAll(s).length === k,
    { timeout: 10000, polling: 'mutation' },
    selector,
    n,
  );
}

describe('serve --ui', () => {
  test.each(['fork', 'thread'])('%s: the tree and the table fill as clients connect and empty as they leave', async (model) => {
    const r = cli(['serve', '--model', model, '--port', '0', '--json', '--ui', '--max-clients', '8']);
    await waitFor(() => r.lines.length >= 2, 10000, 'the listening and ui lines');
    const listening = JSON.parse(r.lines[0]);
    const ui = JSON.parse(r.lines[1]);
    expect(ui).toMatchObject({ event: 'ui', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) });

    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    await page.goto(ui.url);
    const server = 'section.server[data-server="1"]';
    await page.waitForSelector(`${server}[data-status="listening"][data-model="${model}"]`);
    expect(await page.$eval('#status', (e) => e.getAttribute('data-state'))).toBe('up');

    const clients: Client[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await Client.open(listening.port);
      await c.echo(`client ${i}\n`);
      clients.push(c);
    }
    await waitCount(page, `${server} tr.row[data-state="serving"]`, 3);
    await waitCount(page, `${server} li[data-kind="connection"][data-state="serving"]`, 3);
    await waitCount(page, `${server} .cell[data-used="serving"]`, 3);
    await page.waitForFunction(
      (s) => document.querySelector(`${s} dd[data-counter="accepted"]`)?.textContent === '3',
      {},
      server,
    );
    // The tree: connections hang below the master (fork) or the server thread (thread), under Node.
    const parentKind = model === 'fork' ? 'master' : 'server-thread';
    expect(
      await count(page, `${server} li[data-kind="node"] > ul > li[data-kind="${parentKind}"] > ul > li[data-kind="connection"]`),
    ).toBe(3);
    const peers = await page.$$eval(`${server} tr.row td[data-field="peer"]`, (tds) => tds.map((td) => td.textContent));
    expect(peers.sort()).toEqual(clients.map((c) => `127.0.0.1:${c.localPort}`).sort());
    if (model === 'fork') {
      const pids = await page.$$eval(`${server} tr.row`, (trs) => trs.map((tr) => Number(tr.getAttribute('data-pid'))));
      expect(new Set(pids).size).toBe(3);
      expect(pids).not.toContain(listening.pid);
    } else {
      const tids = await page.$$eval(`${server} tr.row`, (trs) => trs.map((tr) => Number(tr.getAttribute('data-tid'))));
      expect(tids.every((t) => t > 0)).toBe(true);
    }
    // The timeline grows with the real calls.
    await page.waitForFunction(
      (s, call) => document.querySelectorAll(`${s} ol.timeline li[data-call="${call}"]`).length === 3,
      {},
      server,
      model === 'fork' ? 'fork' : 'pthread_create',
    );

    if (model === 'fork') {
      const shot = join(tmpdir(), `ps-ui-${process.pid}.png`);
      await page.screenshot({ path: shot, fullPage: false });
      const png = readFileSync(shot);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      if (process.env.UPDATE_UI_SCREENSHOT === '1') writeFileSync(SCREENSHOT, png);
      rmSync(shot);
    }

    clients[0].end();
    await waitCount(page, `${server} tr.row`, 2);
    clients[1].destroy();
    clients[2].destroy();
    await waitCount(page, `${server} tr.row`, 0);
    await waitCount(page, `${server} li[data-kind="connection"]`, 0);
    await page.waitForFunction((s) => document.querySelector(`${s} dd[data-counter="closed"]`)?.textContent === '3', {}, server);

    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    await page.close();
  });

  test('the page is served on 127.0.0.1 only, to this machine’s names only', async () => {
    const r = cli(['serve', '--model', 'iterative', '--port', '0', '--json', '--ui']);
    await waitFor(() => r.lines.length >= 2, 10000, 'the ui line');
    const url = new URL(JSON.parse(r.lines[1]).url);
    expect(url.hostname).toBe('127.0.0.1');
    const get = (path: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: Number(url.port), path, headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await get('/', `127.0.0.1:${url.port}`)).toBe(200);
    expect(await get('/', `localhost:${url.port}`)).toBe(200);
    expect(await get('/', `evil.example:${url.port}`)).toBe(403);
    expect(await get('/nope', `127.0.0.1:${url.port}`)).toBe(404);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });
});

describe('lab --ui', () => {
  test("zombies: the page opens first, the lab runs, the reap: 'none' server's children show as zombies, then are reaped", async () => {
    const r = cli(['lab', 'zombies', '--ui']);
    await waitFor(() => r.lines.some((l) => l.startsWith('live view: ')), 10000, 'the live view line');
    const url = /live view: (\S+)/.exec(r.lines.find((l) => l.startsWith('live view: '))!)![1];
    expect(r.lines.some((l) => l.startsWith('== lab'))).toBe(false); // it waits for the page

    const page = await browser.newPage();
    // Before the page's own script runs: remember the most zombie rows the page ever showed.
    await page.evaluateOnNewDocument(() => {
      const w = window as unknown as { maxZombies: number; maxZombieNodes: number };
      w.maxZombies = 0;
      w.maxZombieNodes = 0;
      new MutationObserver(() => {
        const first = document.querySelector('section.server[data-server="1"]');
        if (!first) return;
        w.maxZombies = Math.max(w.maxZombies, first.querySelectorAll('tr.row[data-state="zombie"]').length);
        w.maxZombieNodes = Math.max(
          w.maxZombieNodes,
          first.querySelectorAll('li[data-kind="connection"][data-state="zombie"]').length,
        );
      }).observe(document, { subtree: true, childList: true, attributes: true });
    });
    await page.goto(url);
    await waitFor(() => r.lines.some((l) => l.startsWith('OK: ')), 30000, 'the lab to pass');
    const seen = await page.evaluate(() => {
      const w = window as unknown as { maxZombies: number; maxZombieNodes: number };
      return { rows: w.maxZombies, nodes: w.maxZombieNodes };
    });
    expect(seen).toEqual({ rows: 3, nodes: 3 });
    // Both servers, closed; the first was the one without reaping; all rows gone (reaped at close).
    await waitCount(page, 'section.server[data-status="closed"]', 2);
    expect(await page.$eval('section.server[data-server="1"] h2', (h) => h.textContent)).toContain("reap: 'none'");
    expect(await count(page, 'tr.row')).toBe(0);
    expect(await count(page, 'section.server[data-server="1"] ol.timeline li[data-call="child-exit"]')).toBe(3);
    expect(r.lines).toContain('the page stays up: Ctrl-C to exit');
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(0);
    await page.close();
  });
});
