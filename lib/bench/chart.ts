// The benchmark's chart (--svg): a bar per model for each workload and width, its whisker the
// min–max spread over the rounds.
import { EXEC_PROGRAM } from './catalogue';
import type { BenchReport } from './report';
import { summarize, type Summary } from './stats';
import { fmt } from './table';

/** A bar chart (msgs/s per model and width, conns/s), error bars from the min–max spread. */
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
  const labelW = 140;
  const chartW = 520;
  let y = 30;
  const parts: string[] = [];
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  for (const g of groups) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(g.title)}</text>`);
    y += 10;
    const max = Math.max(...g.bars.map((b) => b.value.max));
    for (const b of g.bars) {
      const w = (b.value.median / max) * chartW;
      const x0 = labelW + (b.value.min / max) * chartW;
      const x1 = labelW + (b.value.max / max) * chartW;
      const colour =
        b.model.startsWith('ref-') || b.model === 'socat' || b.model === 'socat-exec' || b.model === 'xinetd-exec'
          ? '#999'
          : b.model === 'node' || b.model === 'cluster'
            ? '#4a8'
            : '#36c';
      parts.push(
        `<text x="10" y="${y + 13}">${esc(b.model)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 4}" fill="${colour}"/>`,
        `<line x1="${x0.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${y + 7}" y2="${y + 7}" stroke="#000"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 12}" font-size="11">${fmt(b.value.median)}</text>`,
      );
      y += barH;
    }
    y += 20;
  }
  const width = labelW + chartW + 120;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `</svg>`,
    '',
  ].join('\n');
}
