// A short smoke of the benchmark (the full one is `npm run bench`): the real CLI, the real load
// generator, four models; checks the table and the --json schema, not the speed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchReport } from '../lib/bench/runner';

test('bench --json writes every raw round; the table compares each model with node and with its C reference', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  const json = join(dir, 'bench.json');
  const svg = join(dir, 'bench.svg');
  const r = spawnSync(
    process.execPath,
    [
      join(__dirname, '..', 'dist', 'cli', 'main.js'),
      'bench',
      '--models',
      'thread,ref-thread,fork,node',
      '--connections',
      '1,4',
      '--duration',
      '0.2',
      '--repeat',
      '2',
      '--json',
      json,
      '--svg',
      svg,
    ],
    { encoding: 'utf8', timeout: 60000 },
  );
  expect(r.status).toBe(0);
  const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  expect(report.config).toMatchObject({
    models: ['thread', 'ref-thread', 'fork', 'node'],
    connections: [1, 4],
    durationMs: 200,
    repeat: 2,
  });
  // 4 models × 2 rounds × (2 ping-pong widths + churn), in alternating rounds.
  expect(report.rounds).toHaveLength(24);
  expect(report.rounds.slice(0, 12).every((x) => x.round === 1)).toBe(true);
  for (const round of report.rounds) {
    expect(round.result.messages).toBeGreaterThan(0);
    expect(round.result.verifyFailures).toBe(0);
    expect(round.footprint.processes).toBeGreaterThanOrEqual(1);
    expect(round.footprint.rssMb).toBeGreaterThan(0);
  }
  const row = (model: string) =>
    r.stdout
      .split('\n')
      .find((l) => new RegExp(`^${model}\\s+1\\s`).test(l))!
      .split(/\s{2,}/);
  // model, conns, msgs/s (min–max), × node, × ref, p50, p99, conns/s, procs, threads, RSS, client CPU
  const thread = row('thread');
  expect(thread).toHaveLength(12);
  expect(thread[3]).toMatch(/^\d+(\.\d+)?$/); // × node
  expect(thread[4]).toMatch(/^\d+(\.\d+)?$/); // × ref
  expect(row('node')[3]).toBe('1'); // node against itself
  expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[^>]*>[\s\S]*ping-pong msgs\/s, 1 connection[\s\S]*<\/svg>\n$/);
  expect(r.stderr).toMatch(/round 2\/2 · node/); // the progress line
});
