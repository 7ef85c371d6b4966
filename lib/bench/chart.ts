// The benchmark's chart (--svg): a bar per model for each workload and width, its whisker the
// min–max spread over the rounds.
import { EXEC_PROGRAM } from './catalogue';
import type { BenchReport } from './report';
import { summarize, type Summary } from './stats';
import { fmt } from './table';

const NATIVE = '#36c';
const NODE = '#4a8';
const PEER = '#999';

/**
 * A bar chart (msgs/s per model and width, conns/s, CPU per connection), under a legend; each bar
 * the median over the rounds, its whisker the min–max spread, its figure right of both.
 */
export function renderSvg(report: BenchReport): string {
  const sums = summarize(report);
  type Bar = { model: string; value: { median: number; min: number; max: number } };
  const rates = (ss: Summary[]): Bar[] => ss.map((s) => ({ model: s.model, value: s.rate }));
  const cpu = (ss: Summary[]): Bar[] =>
    ss.filter((s) => Number.isFinite(s.cpuPerConnUs.median)).map((s) => ({ model: s.model, value: s.cpuPerConnUs }));
  const groups: Array<{ title: string; bars: Bar[] }> = [
    ...report.config.connections.map((c) => ({
      title: `ping-pong msgs/s, ${c} connection${c === 1 ? '' : 's'}`,
      bars: rates(sums.filter((s) => s.kind === 'pingpong' && s.connections === c)),
    })),
    { title: `churn conns/s`, bars: rates(sums.filter((s) => s.kind === 'churn')) },
    {
      title: `rpc replies/s (${report.config.replyBytes} bytes each, UNP ch. 30)`,
      bars: rates(sums.filter((s) => s.kind === 'rpc')),
    },
    { title: `server CPU µs per connection, rpc (shorter is better)`, bars: cpu(sums.filter((s) => s.kind === 'rpc')) },
    { title: `server CPU µs per connection, churn (shorter is better)`, bars: cpu(sums.filter((s) => s.kind === 'churn')) },
    { title: `exec churn conns/s (${EXEC_PROGRAM} per connection)`, bars: rates(sums.filter((s) => s.kind === 'exec')) },
  ].filter((g) => g.bars.length > 0);
  const barH = 18;
  const labelW = 150;
  const chartW = 520;
  const valueW = 90; // room for the median's figure right of the longest whisker
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const colourOf = (model: string) =>
    model.startsWith('ref-') || model === 'socat' || model === 'socat-exec' || model === 'xinetd-exec'
      ? PEER
      : model === 'node' || model === 'cluster'
        ? NODE
        : NATIVE;
  // The legend: what the colours, the whiskers and the figures are.
  const parts: string[] = [];
  let y = 20;
  let x = 10;
  for (const [colour, text] of [
    [NATIVE, "posix-servers' native models"],
    [NODE, "Node's net and cluster"],
    [PEER, 'C references and peers (socat, xinetd)'],
  ] as const) {
    parts.push(
      `<rect class="legend" x="${x}" y="${y - 10}" width="12" height="12" fill="${colour}"/>`,
      `<text class="legend" x="${x + 16}" y="${y}">${esc(text)}</text>`,
    );
    x += 16 + text.length * 7 + 18;
  }
  y += 18;
  parts.push(
    `<line class="legend" x1="10" x2="40" y1="${y - 4}" y2="${y - 4}" stroke="#000"/>`,
    `<line class="legend" x1="10" x2="10" y1="${y - 8}" y2="${y}" stroke="#000"/>`,
    `<line class="legend" x1="40" x2="40" y1="${y - 8}" y2="${y}" stroke="#000"/>`,
    `<text class="legend" x="48" y="${y}">${esc(`the lowest and highest of ${report.config.repeat} rounds; the bar and its figure: the median`)}</text>`,
  );
  y += 30;
  for (const g of groups) {
    parts.push(`<text class="title" x="10" y="${y}" font-weight="bold">${esc(g.title)}</text>`);
    y += 10;
    const max = Math.max(...g.bars.map((b) => b.value.max));
    for (const b of g.bars) {
      const w = (b.value.median / max) * chartW;
      const x0 = labelW + (b.value.min / max) * chartW;
      const x1 = labelW + (b.value.max / max) * chartW;
      const mid = y + 7;
      parts.push(
        `<text class="label" x="10" y="${y + 12}">${esc(b.model)}</text>`,
        `<rect class="bar" x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 4}" fill="${colourOf(b.model)}"/>`,
        `<line class="whisker" x1="${x0.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${mid}" y2="${mid}" stroke="#000"/>`,
        `<line class="whisker" x1="${x0.toFixed(1)}" x2="${x0.toFixed(1)}" y1="${mid - 4}" y2="${mid + 4}" stroke="#000"/>`,
        `<line class="whisker" x1="${x1.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${mid - 4}" y2="${mid + 4}" stroke="#000"/>`,
        // Right of the bar and of its whisker, whichever ends later: no whisker crosses a figure.
        `<text class="value" x="${(Math.max(labelW + w, x1) + 6).toFixed(1)}" y="${y + 11}" font-size="11">${fmt(b.value.median)}</text>`,
      );
      y += barH;
    }
    y += 20;
  }
  const width = labelW + chartW + valueW;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `</svg>`,
    '',
  ].join('\n');
}
