// The live view's page: one HTML document with its style and script inline, compiled into dist
// like any module, so that nothing has to be built or fetched to show it. The script listens to
// /events (Server-Sent Events, live.ts) and draws each server: the process/thread tree, the child
// or slot table filling and emptying, the counters, and the trace timeline as it grows.
import type { Lang } from '../util/i18n';

const LABELS = {
  en: {
    title: 'posix-servers — live',
    connected: 'live',
    disconnected: 'disconnected — retrying',
    waiting: 'No server yet: it appears here as soon as it starts.',
    server: 'server',
    port: 'port',
    pid: 'pid',
    listening: 'listening',
    closed: 'closed',
    tree: 'Processes and threads',
    children: 'Child table',
    slots: 'INFO[] slot table',
    current: 'Being served (one at a time)',
    connections: 'Connections',
    inUse: 'in use',
    counters: 'Counters',
    timeline: 'Trace',
    empty: '(empty)',
    serving: 'serving',
    zombie: 'zombie: exited, not reaped',
    colSlot: 'slot',
    colId: '#',
    colPid: 'pid',
    colTid: 'tid',
    colCfd: 'cfd',
    colWorkerFd: "worker's fd",
    colPeer: 'peer',
    colState: 'state',
    wrongFd: 'not its own client (&cfd)',
  },
  zh: {
    title: 'posix-servers —— 实时视图',
    connected: '实时',
    disconnected: '连接断开 —— 正在重试',
    waiting: '还没有服务器：服务器一启动就会显示在这里。',
    server: '服务器',
    port: '端口',
    pid: '进程',
    listening: '监听中',
    closed: '已关闭',
    tree: '进程与线程',
    children: '子进程表',
    slots: 'INFO[] 槽位表',
    current: '正在服务（一次一个）',
    connections: '连接',
    inUse: '已占用',
    counters: '计数器',
    timeline: '跟踪',
    empty: '（空）',
    serving: '服务中',
    zombie: '僵尸：已退出，未回收',
    colSlot: '槽位',
    colId: '#',
    colPid: '进程',
    colTid: '线程',
    colCfd: 'cfd',
    colWorkerFd: '子线程读到的 fd',
    colPeer: '客户端',
    colState: '状态',
    wrongFd: '不是它自己的客户端（&cfd）',
  },
} as const;

const STYLE = `
:root { font-family: system-ui, sans-serif; color: #111827; background: #f3f4f6; }
body { margin: 0; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; background: #111827; color: #f9fafb; }
header h1 { font-size: 1.1rem; margin: 0; }
#status { font-size: .85rem; padding: .1rem .5rem; border-radius: .6rem; background: #16a34a; }
#status[data-state="down"] { background: #dc2626; }
main { padding: .8rem 1rem; display: flex; flex-direction: column; gap: 1rem; }
.server { background: #fff; border: 1px solid #d1d5db; border-radius: .5rem; padding: .6rem .8rem; }
.server[data-status="closed"] { opacity: .65; }
.server h2 { font-size: 1rem; margin: 0 0 .5rem; }
.server h2 .st { font-size: .8rem; font-weight: normal; padding: .05rem .4rem; border-radius: .5rem; background: #dcfce7; }
.server[data-status="closed"] h2 .st { background: #e5e7eb; }
.grid { display: grid; grid-template-columns: minmax(16rem, 1fr) minmax(20rem, 1.4fr) minmax(12rem, .8fr); gap: .8rem; }
.panel h3 { font-size: .85rem; margin: 0 0 .3rem; color: #374151; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1rem; border-left: 1px dashed #9ca3af; }
ul.tree { padding-left: .3rem; border-left: none; }
ul.tree li { margin: .15rem 0; font-family: ui-monospace, monospace; font-size: .8rem; }
ul.tree li > span { padding: .05rem .3rem; border-radius: .3rem; background: #eef2ff; }
ul.tree li[data-kind="connection"] > span { background: #dbeafe; }
li[data-state="zombie"] > span, tr[data-state="zombie"] { background: #e5e7eb !important; color: #6b7280; text-decoration: line-through; }
.state { font-size: .7rem; color: #6b7280; margin-left: .3rem; }
table { border-collapse: collapse; width: 100%; font-family: ui-monospace, monospace; font-size: .8rem; }
th, td { text-align: left; padding: .15rem .4rem; border-bottom: 1px solid #e5e7eb; }
tr.wrong td { color: #dc2626; font-weight: bold; }
.cells { display: flex; flex-wrap: wrap; gap: 2px; margin: .3rem 0; }
.cell { width: 9px; height: 9px; background: #e5e7eb; border-radius: 2px; }
.cell[data-used="serving"] { background: #2563eb; }
.cell[data-used="zombie"] { background: #6b7280; }
dl.counters { display: grid; grid-template-columns: auto auto; gap: .1rem .8rem; margin: 0; font-size: .85rem; }
dl.counters dd { margin: 0; font-family: ui-monospace, monospace; text-align: right; }
ol.timeline { margin: 0; padding-left: 0; list-style: none; max-height: 16rem; overflow-y: auto; font-family: ui-monospace, monospace; font-size: .75rem; background: #f9fafb; border: 1px solid #e5e7eb; }
ol.timeline li { padding: .05rem .4rem; white-space: pre-wrap; border-bottom: 1px solid #f3f4f6; }
ol.timeline li[data-call="accept-eintr"], ol.timeline li[data-call="waitpid"] { color: #b45309; }
ol.timeline li[data-call="fork"], ol.timeline li[data-call="pthread_create"] { color: #6d28d9; }
.waiting { color: #6b7280; }
`;

// The page's script: plain ES2017 for the browser, no modules, no build.
const SCRIPT = `
'use strict';
const L = JSON.parse(document.getElementById('labels').textContent);
const main = document.querySelector('main');
const statusEl = document.getElementById('status');
const COUNTERS = ['accepted', 'active', 'rejected', 'closed', 'reaped', 'zombies', 'eintrRetries', 'bytesIn', 'bytesOut'];
const MAX_LINES = 500;

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function section(index) {
  let s = main.querySelector('section.server[data-server="' + index + '"]');
  if (s) return s;
  main.querySelector('.waiting')?.remove();
  s = el('section', { class: 'server', 'data-server': index });
  s.append(el('h2'));
  const grid = el('div', { class: 'grid' });
  const tree = el('div', { class: 'panel tree-panel' });
  tree.append(el('h3', {}, L.tree), el('ul', { class: 'tree' }));
  const table = el('div', { class: 'panel table-panel' });
  table.append(el('h3'), el('div', { class: 'cells' }), el('table', { class: 'table' }));
  const counters = el('div', { class: 'panel counters-panel' });
  counters.append(el('h3', {}, L.counters), el('dl', { class: 'counters' }));
  grid.append(tree, table, counters);
  const timeline = el('div', { class: 'panel timeline-panel' });
  timeline.append(el('h3', {}, L.timeline), el('ol', { class: 'timeline' }));
  s.append(grid, timeline);
  // The newest server first: in a lab, the one running now.
  main.prepend(s);
  return s;
}

function renderTree(ul, nodes) {
  ul.replaceChildren();
  const byParent = new Map();
  for (const n of nodes) {
    const k = n.parent || '';
    if (!byParent.has(k)) byParent.set(k, []);
    byParent.get(k).push(n);
  }
  const add = (into, parent) => {
    for (const n of byParent.get(parent) || []) {
      const li = el('li', { 'data-key': n.key, 'data-kind': n.kind, 'data-pid': n.pid, 'data-tid': n.tid, 'data-state': n.state, 'data-row': n.row });
      li.append(el('span', {}, n.label));
      const st = n.state === 'zombie' ? L.zombie : n.state === 'serving' ? L.serving : n.state;
      li.append(el('span', { class: 'state' }, st));
      const kids = byParent.get(n.key);
      if (kids && kids.length) {
        const sub = el('ul');
        add(sub, n.key);
        li.append(sub);
      }
      into.append(li);
    }
  };
  add(ul, '');
}

function columns(kind) {
  if (kind === 'children') return [['colPid', 'pid'], ['colId', 'id'], ['colCfd', 'cfd'], ['colPeer', 'peer'], ['colState', 'state']];
  if (kind === 'slots') return [['colSlot', 'slot'], ['colId', 'id'], ['colTid', 'tid'], ['colCfd', 'cfd'], ['colWorkerFd', 'workerFd'], ['colPeer', 'peer'], ['colState', 'state']];
  if (kind === 'current') return [['colId', 'id'], ['colCfd', 'cfd'], ['colPeer', 'peer'], ['colState', 'state']];
  return [['colId', 'id'], ['colPid', 'pid'], ['colPeer', 'peer'], ['colState', 'state']];
}

function renderTable(panel, v) {
  const title = v.tableKind === 'children' ? L.children : v.tableKind === 'slots' ? L.slots : v.tableKind === 'current' ? L.current : L.connections;
  panel.querySelector('h3').textContent = title + ' — ' + v.rows.length + ' / ' + v.capacity + ' ' + L.inUse;
  const cells = panel.querySelector('.cells');
  cells.replaceChildren();
  if (v.capacity <= 256) {
    const used = new Map();
    if (v.tableKind === 'slots') for (const r of v.rows) used.set(r.slot, r.state);
    else v.rows.forEach((r, i) => used.set(i, r.state));
    for (let i = 0; i < v.capacity; i++) cells.append(el('span', { class: 'cell', 'data-cell': i, 'data-used': used.get(i) }));
  }
  const table = panel.querySelector('table');
  table.replaceChildren();
  const cols = columns(v.tableKind);
  const head = el('tr');
  for (const [label] of cols) head.append(el('th', {}, L[label]));
  table.append(head);
  if (v.rows.length === 0) {
    const tr = el('tr', { class: 'none' });
    tr.append(el('td', { colspan: cols.length }, L.empty));
    table.append(tr);
  }
  for (const r of v.rows) {
    const wrong = r.workerFd !== undefined && r.cfd !== undefined && r.workerFd !== r.cfd;
    const tr = el('tr', { class: wrong ? 'row wrong' : 'row', 'data-key': r.key, 'data-id': r.id, 'data-pid': r.pid, 'data-slot': r.slot, 'data-tid': r.tid, 'data-state': r.state, title: wrong ? L.wrongFd : undefined });
    for (const [, field] of cols) {
      const val = field === 'state' ? (r.state === 'zombie' ? L.zombie : L.serving) : r[field];
      tr.append(el('td', { 'data-field': field }, val === undefined ? '' : String(val)));
    }
    table.append(tr);
  }
}

function renderCounters(dl, c) {
  dl.replaceChildren();
  if (!c) return;
  for (const name of COUNTERS) {
    dl.append(el('dt', {}, name), el('dd', { 'data-counter': name }, String(c[name])));
  }
}

function render(v) {
  const s = section(v.index);
  s.dataset.model = v.model;
  s.dataset.status = v.status;
  s.dataset.pid = v.pid;
  const sw = [];
  if (v.model === 'fork' && v.reap === 'none') sw.push("reap: 'none'");
  if (v.model === 'thread' && v.threadArg === 'shared-cfd') sw.push("threadArg: 'shared-cfd'");
  const h2 = s.querySelector('h2');
  h2.textContent = v.index + ') ' + v.model + ' ' + L.server + (sw.length ? ' (' + sw.join(', ') + ')' : '') + ' · ' + L.port + ' ' + v.port + ' · ' + L.pid + ' ' + v.pid + ' ';
  h2.append(el('span', { class: 'st' }, v.status === 'closed' ? L.closed : L.listening));
  renderTree(s.querySelector('ul.tree'), v.tree);
  renderTable(s.querySelector('.table-panel'), v);
  renderCounters(s.querySelector('dl.counters'), v.counters);
}

function addLine(line) {
  const s = section(line.server);
  const ol = s.querySelector('ol.timeline');
  const stick = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4;
  ol.append(el('li', { 'data-call': line.call }, line.text));
  while (ol.children.length > MAX_LINES) ol.firstElementChild.remove();
  if (stick) ol.scrollTop = ol.scrollHeight;
}

const es = new EventSource('/events');
es.addEventListener('snapshot', (e) => {
  const snap = JSON.parse(e.data);
  main.replaceChildren();
  if (snap.servers.length === 0) main.append(el('p', { class: 'waiting' }, L.waiting));
  for (const v of snap.servers) render(v);
  for (const line of snap.lines) addLine(line);
  statusEl.textContent = L.connected;
  statusEl.dataset.state = 'up';
});
es.addEventListener('server', (e) => render(JSON.parse(e.data)));
es.addEventListener('line', (e) => addLine(JSON.parse(e.data)));
es.onerror = () => {
  statusEl.textContent = L.disconnected;
  statusEl.dataset.state = 'down';
};
`;

/** The page, with its labels in `lang`. */
export function pageHtml(lang: Lang): string {
  const L = LABELS[lang];
  // JSON inside <script type="application/json">: only "</" could end it early.
  const labels = JSON.stringify(L).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${L.title}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${L.title}</h1><span id="status" data-state="down">…</span></header>
<main><p class="waiting">${L.waiting}</p></main>
<script type="application/json" id="labels">${labels}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
