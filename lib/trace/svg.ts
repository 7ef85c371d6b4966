// The trace as the lecture draws it on the board: a sequence diagram with one vertical lane per
// process or thread (Node, the fork master, each child; the server thread, each worker), time
// flowing down one row per event. fork/pthread_create branch a new lane off its parent; accept,
// EINTR, SIGCHLD, waitpid and close are marks; a lane ends where its child exits and is reaped
// (or its thread returns); a child that exited and was not reaped is drawn dead but not gone: a
// dashed grey "zombie" line until waitpid, or to the bottom of the picture.
//
// The SVG carries its data: every lane and mark has data-* attributes (pid, tid, call, fd, row…),
// so that a test — or a curious student — can read the diagram back and check it against the trace.
import type { Lang } from '../util/i18n';
import { t } from '../util/i18n';
import { buildDiagram, Diagram, Lane, Mark } from './lanes';
import type { RecordedServer } from './recording';

const ROW_H = 22;
const COL_W = 96;
const GUTTER = 92; // the time column
const HEAD_H = 64; // lane titles above the first row
const TEXT_W = 760; // the text column right of the lanes
const FONT = 'DejaVu Sans Mono, Menlo, Consolas, monospace';

/** XML text and attribute values. */
function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function attrs(a: Record<string, string | number | boolean | undefined | null>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined && v !== null && v !== false)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join('');
}

/** Columns for the lanes: Node and the master/server thread first; a column is reused once its lane has ended. */
function assignColumns(d: Diagram): Map<string, number> {
  const col = new Map<string, number>();
  const freeFrom: number[] = []; // column → first row at which it is free again
  for (const lane of d.lanes) {
    let c: number;
    if (lane.kind === 'node') c = 0;
    else if (lane.kind === 'master' || lane.kind === 'server-thread') c = 1;
    else {
      c = 2;
      while (freeFrom[c] !== undefined && freeFrom[c] > lane.startRow - 1) c++;
    }
    col.set(lane.id, c);
    freeFrom[c] = Math.max(freeFrom[c] ?? 0, lane.endRow + 1);
  }
  return col;
}

function laneTitle(l: Lane, lang: Lang): string {
  switch (l.kind) {
    case 'node':
      return t(lang, { en: `Node ${l.pid}`, zh: `Node ${l.pid}` });
    case 'master':
      return t(lang, { en: `master ${l.pid}`, zh: `master ${l.pid}` });
    case 'server-thread':
      return t(lang, { en: 'server thread', zh: '服务器线程' });
    case 'child':
      return t(lang, { en: `child ${l.pid}`, zh: `子进程 ${l.pid}` });
    case 'worker':
      return t(lang, {
        en: `worker #${l.connection}${l.tid ? ` tid ${l.tid}` : ''}`,
        zh: `子线程 #${l.connection}${l.tid ? ` ${l.tid}` : ''}`,
      });
    case 'pool-thread':
      return t(lang, {
        en: `pool thread #${l.worker}${l.tid ? ` tid ${l.tid}` : ''}`,
        zh: `线程池线程 #${l.worker}${l.tid ? ` ${l.tid}` : ''}`,
      });
    case 'cluster-worker':
      return t(lang, { en: `worker ${l.pid}`, zh: `工作进程 ${l.pid}` });
  }
}

function laneSubtitle(l: Lane, lang: Lang): string {
  const peer = l.peer
    ? l.peer.family === 'IPv6'
      ? `[${l.peer.address}]:${l.peer.port}`
      : `${l.peer.address}:${l.peer.port}`
    : '';
  if (l.kind === 'child') return `#${l.connection ?? '?'} ${peer}`.trim();
  if (l.kind === 'worker') return `${t(lang, { en: 'slot', zh: '槽位' })} ${l.slot ?? '?'} ${peer}`.trim();
  if (l.kind === 'server-thread') return `pid ${l.pid}`;
  return '';
}

function headingOf(rec: RecordedServer, lang: Lang): string {
  const sw: string[] = [];
  if (rec.model === 'fork' && rec.reap === 'none') sw.push("reap: 'none'");
  if (rec.model === 'thread' && rec.threadArg === 'shared-cfd') sw.push("threadArg: 'shared-cfd'");
  const extra = sw.length ? ` (${sw.join(', ')})` : '';
  return t(lang, {
    en: `${rec.index}) ${rec.model} server${extra} on port ${rec.port}, pid ${rec.pid}`,
    zh: `${rec.index}) ${rec.model} 服务器${extra}，端口 ${rec.port}，进程 ${rec.pid}`,
  });
}

const MARK_COLOR: Record<Mark['kind'], string> = {
  call: '#6b7280',
  accept: '#2563eb',
  eintr: '#ea580c',
  fork: '#7c3aed',
  exec: '#7c3aed',
  thread: '#7c3aed',
  close: '#374151',
  refuse: '#dc2626',
  sigchld: '#dc2626',
  waitpid: '#16a34a',
  exit: '#111827',
  shutdown: '#6b7280',
  event: '#2563eb',
};

function markShape(m: Mark, x: number, y: number): string {
  const c = m.wrong ? '#dc2626' : MARK_COLOR[m.kind];
  switch (m.kind) {
    case 'eintr': // a lightning-like diamond
      return `<path d="M${x} ${y - 7} L${x + 6} ${y} L${x} ${y + 7} L${x - 6} ${y} Z" fill="${c}"/>`;
    case 'fork':
    case 'exec':
    case 'thread':
      return `<rect x="${x - 5}" y="${y - 5}" width="10" height="10" fill="${c}"/>`;
    case 'close':
      return `<circle cx="${x}" cy="${y}" r="5" fill="#fff" stroke="${c}" stroke-width="2"/><path d="M${x - 3} ${y - 3} L${x + 3} ${y + 3} M${x + 3} ${y - 3} L${x - 3} ${y + 3}" stroke="${c}" stroke-width="1.5"/>`;
    case 'refuse':
      return `<rect x="${x - 5}" y="${y - 5}" width="10" height="10" fill="#fff" stroke="${c}" stroke-width="2"/>`;
    case 'sigchld':
      return `<path d="M${x - 6} ${y - 6} L${x + 6} ${y} L${x - 6} ${y + 6} Z" fill="${c}"/>`;
    case 'waitpid':
      return `<rect x="${x - 5}" y="${y - 5}" width="10" height="10" rx="2" fill="${c}"/>`;
    case 'exit':
      return `<rect x="${x - 8}" y="${y - 2}" width="16" height="4" fill="${c}"/>`;
    case 'shutdown':
      return `<path d="M${x - 5} ${y + 5} L${x + 5} ${y + 5} L${x} ${y - 5} Z" fill="${c}"/>`;
    default:
      return `<circle cx="${x}" cy="${y}" r="4.5" fill="${c}"/>`;
  }
}

function renderDiagram(d: Diagram, lang: Lang, top: number, width: number): { svg: string; height: number } {
  const col = assignColumns(d);
  const ncols = Math.max(2, ...[...col.values()].map((c) => c + 1));
  const xOf = (laneId: string) => GUTTER + (col.get(laneId) ?? 0) * COL_W + COL_W / 2;
  const yOf = (row: number) => HEAD_H + row * ROW_H + ROW_H / 2;
  const textX = GUTTER + ncols * COL_W + 110; // room for the last lane's title
  const height = HEAD_H + d.rows * ROW_H + 16;
  const out: string[] = [];
  const rec = d.server;
  out.push(
    `<g class="diagram"${attrs({
      'data-index': rec.index,
      'data-model': rec.model,
      'data-pid': rec.pid,
      'data-node-pid': rec.nodePid,
      'data-port': rec.port,
      'data-reap': rec.model === 'fork' ? rec.reap : undefined,
      'data-thread-arg': rec.model === 'thread' ? rec.threadArg : undefined,
      'data-rows': d.rows,
    })} transform="translate(0 ${top})">`,
  );
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text class="heading" x="8" y="18" font-weight="bold" font-size="14">${escapeXml(headingOf(rec, lang))}</text>`);

  // Lanes: the line while alive, then the zombie stretch, then how it ended.
  out.push('<g class="lanes">');
  for (const l of d.lanes) {
    const x = xOf(l.id);
    const y0 = l.kind === 'node' ? HEAD_H - 6 : yOf(l.startRow);
    const aliveEnd = yOf(l.exitRow ?? l.endRow);
    const zombie = l.exitRow !== undefined && (l.end === 'zombie' || l.reapedRow !== undefined) && l.kind === 'child';
    out.push(
      `<g class="lane"${attrs({
        'data-lane': l.id,
        'data-kind': l.kind,
        'data-pid': l.pid,
        'data-tid': l.tid,
        'data-slot': l.slot,
        'data-worker': l.worker,
        'data-connection': l.connection,
        'data-parent': l.parent,
        'data-start-row': l.startRow,
        'data-exit-row': l.exitRow,
        'data-reaped-row': l.reapedRow,
        'data-end-row': l.endRow,
        'data-end': l.end,
        'data-column': col.get(l.id),
      })}>`,
    );
    const stroke = l.kind === 'node' ? '#111827' : l.kind === 'master' || l.kind === 'server-thread' ? '#1f2937' : '#4b5563';
    out.push(`<line class="life" x1="${x}" y1="${y0}" x2="${x}" y2="${aliveEnd}" stroke="${stroke}" stroke-width="2"/>`);
    if (zombie) {
      out.push(
        `<line class="zombie" x1="${x}" y1="${aliveEnd}" x2="${x}" y2="${yOf(l.endRow)}" stroke="#9ca3af" stroke-width="2" stroke-dasharray="3 4"/>`,
      );
      // Named where it is long enough to be seen: exited, still in the process table.
      if (l.endRow - (l.exitRow ?? l.endRow) >= 3) {
        out.push(
          `<text class="zombie-label" x="${x + 5}" y="${aliveEnd + ROW_H + 4}" font-size="9" fill="#6b7280">${escapeXml(t(lang, { en: 'zombie', zh: '僵尸' }))}</text>`,
        );
      }
    }
    const yEnd = yOf(l.endRow);
    if (l.end === 'zombie') {
      out.push(
        `<text class="end zombie" x="${x}" y="${yEnd + 4}" text-anchor="middle" font-size="12" font-weight="bold" fill="#6b7280">${escapeXml(t(lang, { en: 'Z (not reaped)', zh: 'Z（未回收）' }))}</text>`,
      );
    } else if (l.end === 'reaped' || l.end === 'killed') {
      const c = l.end === 'killed' ? '#dc2626' : '#16a34a';
      out.push(`<path class="end ${l.end}" d="M${x - 9} ${yEnd + 8} L${x + 9} ${yEnd + 8}" stroke="${c}" stroke-width="3"/>`);
    } else if (l.end === 'exited') {
      out.push(`<path class="end exited" d="M${x - 9} ${yEnd + 7} L${x + 9} ${yEnd + 7}" stroke="#111827" stroke-width="3"/>`);
    }
    // Title: Node and the master/server thread at the top; the others where they begin.
    const ty = l.kind === 'node' || l.kind === 'master' || l.kind === 'server-thread' ? HEAD_H - 26 : yOf(l.startRow) - 4;
    const tx = l.kind === 'node' || l.kind === 'master' || l.kind === 'server-thread' ? x : x + 8;
    const anchor = tx === x ? 'middle' : 'start';
    out.push(
      `<text class="lane-title" x="${tx}" y="${ty}" text-anchor="${anchor}" font-size="11" font-weight="bold">${escapeXml(laneTitle(l, lang))}</text>`,
    );
    const sub = laneSubtitle(l, lang);
    if (sub) {
      out.push(
        `<text class="lane-subtitle" x="${tx}" y="${ty + 11}" text-anchor="${anchor}" font-size="9" fill="#4b5563">${escapeXml(sub)}</text>`,
      );
    }
    out.push('</g>');
  }
  out.push('</g>');

  // Branches: the parent's fork/pthread_create (or Node's fork+exec of the master) starts a lane.
  out.push('<g class="branches">');
  for (const l of d.lanes) {
    if (!l.parent || !col.has(l.parent)) continue;
    const from = d.marks[l.startRow];
    // The call that made it: on the branching mark, or (not traced) what the model does.
    const call =
      from && from.target === l.id && from.call
        ? from.call
        : l.kind === 'server-thread'
          ? 'pthread_create'
          : l.kind === 'cluster-worker'
            ? 'fork'
            : 'start';
    const y = yOf(l.startRow);
    const x1 = xOf(l.parent);
    const x2 = xOf(l.id);
    out.push(
      `<path class="branch"${attrs({ 'data-from': l.parent, 'data-to': l.id, 'data-call': call })} d="M${x1} ${y} L${x2} ${y}" stroke="#7c3aed" stroke-width="1.5" fill="none" marker-end="url(#arrow)"/>`,
    );
  }
  // SIGCHLD: from the child that ended to its parent.
  for (const m of d.marks) {
    if (m.kind !== 'sigchld' || !m.target || !col.has(m.target)) continue;
    const y = yOf(m.row);
    out.push(
      `<path class="signal"${attrs({ 'data-from': m.target, 'data-to': m.lane, 'data-row': m.row })} d="M${xOf(m.target)} ${y} L${xOf(m.lane)} ${y}" stroke="#dc2626" stroke-width="1.2" stroke-dasharray="5 3" fill="none" marker-end="url(#arrow-red)"/>`,
    );
  }
  out.push('</g>');

  // Marks and, on the same row, the time and the whole call in the text column.
  out.push('<g class="marks">');
  for (const m of d.marks) {
    const x = xOf(m.lane);
    const y = yOf(m.row);
    out.push(
      `<g class="mark"${attrs({
        'data-row': m.row,
        'data-lane': m.lane,
        'data-kind': m.kind,
        'data-call': m.call,
        'data-event': m.event,
        'data-pid': m.pid,
        'data-time-ms': m.timeMs.toFixed(3),
        'data-fd': m.fd,
        'data-result': m.result,
        'data-errno': m.errno ?? undefined,
        'data-id': m.id || undefined,
        'data-slot': m.slot,
        'data-worker': m.worker,
        'data-target': m.target,
        'data-wrong': m.wrong ? 'true' : undefined,
      })}>`,
    );
    out.push(`<title>${escapeXml(`${m.text}${m.note ? ` — ${m.note}` : ''}`)}</title>`);
    out.push(markShape(m, x, y));
    out.push(
      `<text x="${x + 9}" y="${y - 5}" font-size="9" fill="${m.wrong ? '#dc2626' : '#111827'}">${escapeXml(m.label)}</text>`,
    );
    out.push(
      `<text class="time" x="${GUTTER - 8}" y="${y + 4}" text-anchor="end" font-size="10" fill="#6b7280">+${(m.timeMs - d.t0Ms).toFixed(3)}</text>`,
    );
    out.push(
      `<text class="line" x="${textX}" y="${y + 4}" font-size="10" fill="${m.wrong ? '#dc2626' : '#111827'}">${escapeXml(m.text)}</text>`,
    );
    out.push('</g>');
  }
  out.push('</g>');
  out.push(
    `<line x1="${GUTTER - 4}" y1="${HEAD_H - 8}" x2="${GUTTER - 4}" y2="${height - 8}" stroke="#e5e7eb"/>` +
      `<text x="${GUTTER - 8}" y="${HEAD_H - 12}" text-anchor="end" font-size="9" fill="#6b7280">ms</text>`,
  );
  out.push('</g>');
  return { svg: out.join('\n'), height };
}

function legend(lang: Lang, top: number): { svg: string; height: number } {
  const items: Array<[Mark['kind'] | 'zombie', string, string]> = [
    ['accept', 'accept() → cfd', 'accept() → cfd'],
    ['eintr', 'EINTR ← signal: accept() interrupted by it', 'EINTR ← 信号：accept() 被它打断'],
    ['fork', 'fork / pthread_create: a new lane', 'fork / pthread_create：新的一条线'],
    ['close', 'close()', 'close()'],
    ['sigchld', 'SIGCHLD reaches the parent', 'SIGCHLD 到达父进程'],
    ['waitpid', 'waitpid: the child is reaped', 'waitpid：子进程被回收'],
    ['exit', 'exit: the child ends', 'exit：子进程结束'],
    ['refuse', 'refused: table full, close(cfd)', '拒绝：表已满，close(cfd)'],
    ['zombie', 'zombie: exited, not reaped', '僵尸：已退出，未回收'],
  ];
  const out: string[] = [`<g class="legend" transform="translate(0 ${top})">`];
  items.forEach(([kind, en, zh], i) => {
    const x = 16 + (i % 3) * 300;
    const y = 16 + Math.floor(i / 3) * 20;
    if (kind === 'zombie') {
      out.push(
        `<line x1="${x - 6}" y1="${y - 7}" x2="${x - 6}" y2="${y + 7}" stroke="#9ca3af" stroke-width="2" stroke-dasharray="3 4"/>`,
      );
    } else {
      out.push(markShape({ kind } as Mark, x, y));
    }
    out.push(`<text x="${x + 14}" y="${y + 4}" font-size="11">${escapeXml(lang === 'en' ? en : zh)}</text>`);
  });
  out.push('</g>');
  return { svg: out.join('\n'), height: 16 + Math.ceil(items.length / 3) * 20 };
}

/**
 * The servers of a recording as one SVG document: a diagram per server, one under the other,
 * then a legend. Labels in `lang`. With no server, a page that says so (`emptyNote`).
 */
export function renderSvg(servers: readonly RecordedServer[], lang: Lang, emptyNote?: string): string {
  const diagrams = servers.map((s) => buildDiagram(s, lang));
  const width = Math.max(
    900,
    ...diagrams.map((d) => {
      const cols = Math.max(2, ...[...assignColumns(d).values()].map((c) => c + 1));
      return GUTTER + cols * COL_W + 110 + TEXT_W;
    }),
  );
  const parts: string[] = [];
  let y = 0;
  if (diagrams.length === 0) {
    const note =
      emptyNote ??
      t(lang, { en: 'No server of this package ran: nothing was traced.', zh: '没有运行本软件包的服务器：没有跟踪记录。' });
    parts.push(`<text class="empty" x="16" y="28" font-size="14">${escapeXml(note)}</text>`);
    y = 44;
  }
  for (const d of diagrams) {
    const r = renderDiagram(d, lang, y, width);
    parts.push(r.svg);
    y += r.height + 12;
  }
  const l = legend(lang, y);
  parts.push(l.svg);
  y += l.height + 8;
  const title = t(lang, { en: 'posix-servers: what the servers did', zh: 'posix-servers：服务器做了什么' });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg"${attrs({ width, height: y, viewBox: `0 0 ${width} ${y}`, 'font-family': FONT, 'data-lang': lang, 'data-servers': diagrams.length })}>`,
    `<title>${escapeXml(title)}</title>`,
    '<defs>',
    '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#7c3aed"/></marker>',
    '<marker id="arrow-red" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#dc2626"/></marker>',
    '</defs>',
    `<rect width="${width}" height="${y}" fill="#f9fafb"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
