// The benchmark's chart (bench --svg), drawn by a real browser: a legend, and no whisker or figure
// crossing another figure or a model's name. Made-up rounds whose spread is wide (the longest
// whisker reaches five times the median), which is where a figure put right of the median's bar
// was struck through.
import type { Page } from 'puppeteer-core';
import { renderSvg } from '../lib/bench/chart';
import type { BenchReport } from '../lib/bench/report';
import { launchBrowser, type LaunchedBrowser } from './browser';

let launched: LaunchedBrowser | undefined;
let page: Page | undefined;

beforeAll(async () => {
  launched = await launchBrowser();
  page = await launched.browser.newPage();
}, 120000);

// Only what beforeAll started: a beforeAll that failed reports its own error and nothing else.
afterAll(async () => {
  await launched?.close();
});

/** Three rounds per model and run, of these rates (msgs/s, conns/s) and CPU. */
function report(): BenchReport {
  const spread: Record<string, number[]> = { fork: [100, 200, 1000], 'ref-fork': [900, 950, 1000], node: [300, 310, 320] };
  const models = Object.keys(spread) as BenchReport['config']['models'];
  const runs: Array<['pingpong' | 'churn', number]> = [
    ['pingpong', 1],
    ['pingpong', 50],
    ['churn', 4],
  ];
  return {
    config: {
      models,
      connections: [1, 50],
      size: 64,
      durationMs: 1000,
      repeat: 3,
      churnClients: 4,
      workloads: ['pingpong', 'churn'],
      replyBytes: 4000,
      warmupMs: 0,
    },
    machine: { cpus: 2, node: process.version, kernel: 'test', date: new Date(0).toISOString() },
    rounds: models.flatMap((model) =>
      runs.flatMap(([kind, connections]) =>
        spread[model].map((rate, i) => ({
          round: i + 1,
          model,
          kind,
          connections,
          result: {
            mode: kind,
            connections,
            size: 64,
            durationMs: 1000,
            messages: rate,
            bytes: rate * 64,
            connects: rate,
            errors: 0,
            resets: 0,
            verifyFailures: 0,
            msgsPerSec: rate,
            mbPerSec: (rate * 64) / 1e6,
            connsPerSec: rate,
            latencyUs: { p50: 1, p90: 1, p99: 1, max: 1, mean: 1 },
            cpu: { userMs: 1, systemMs: 1 },
          },
          footprint: { processes: 1, threads: 1, rssMb: 1 },
          serverCpuMs: rate / 10,
        })),
      ),
    ),
    skipped: [],
  };
}

interface Box {
  cls: string;
  text: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

test('bench --svg in a browser: a legend; every figure right of its whisker; nothing written over anything else', async () => {
  const svg = renderSvg(report());
  await page!.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
  const boxes: Box[] = await page!.$$eval('svg text, svg line.whisker', (els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return {
        cls: e.getAttribute('class') ?? '',
        text: e.textContent ?? '',
        left: r.left,
        right: r.right,
        top: r.top,
        bottom: r.bottom,
      };
    }),
  );
  // The legend names the three colours and says what a whisker and a figure are.
  const legend = boxes.filter((b) => b.cls === 'legend').map((b) => b.text);
  expect(legend).toEqual([
    "posix-servers' native models",
    "Node's net and cluster",
    'C references and peers (socat, xinetd)',
    'the lowest and highest of 3 rounds; the bar and its figure: the median',
  ]);
  // fork's whisker reaches five times its median: its figure stands right of the whisker's end.
  const overlap = (a: Box, b: Box) => a.left < b.right && b.left < a.right && a.top <= b.bottom && b.top <= a.bottom;
  const texts = boxes.filter((b) => b.cls !== 'whisker');
  const whiskers = boxes.filter((b) => b.cls === 'whisker');
  const crossed = texts.flatMap((t) => whiskers.filter((w) => overlap(t, w)).map(() => t.text));
  expect(crossed).toEqual([]);
  const written = texts.flatMap((t, i) =>
    texts
      .slice(i + 1)
      .filter((u) => overlap(t, u))
      .map((u) => `${t.text} / ${u.text}`),
  );
  expect(written).toEqual([]);
  // Every figure and every name inside the picture.
  const width = Number(/width="(\d+)"/.exec(svg)![1]);
  expect(texts.filter((t) => t.right > width).map((t) => t.text)).toEqual([]);
  // What the screenshot shows: bars of each colour (more than the legend's 12×12 swatch).
  const png = (await page!.screenshot({ encoding: 'base64', fullPage: true })) as string;
  // Decoded and counted by the browser itself (a canvas), exact colours only.
  const pixels = (await page!.evaluate(`(async () => {
    const img = new Image();
    img.src = 'data:image/png;base64,${png}';
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, img.width, img.height).data;
    const rgb = { '#36c': [0x33, 0x66, 0xcc], '#4a8': [0x44, 0xaa, 0x88], '#999': [0x99, 0x99, 0x99] };
    const count = { '#36c': 0, '#4a8': 0, '#999': 0 };
    for (let i = 0; i < d.length; i += 4) {
      for (const [name, [r, g, b]] of Object.entries(rgb)) if (d[i] === r && d[i + 1] === g && d[i + 2] === b) count[name]++;
    }
    return count;
  })()`)) as Record<string, number>;
  for (const colour of ['#36c', '#4a8', '#999']) expect([colour, pixels[colour] > 1000]).toEqual([colour, true]);
}, 60000);
