#!/usr/bin/env node
// The output samples of the docs, and the runs they come from. A fenced block right after the line
//   <!-- output: posix-servers ARGS -->
// in README.md or docs/*.md is what that command prints: test/docs.test.ts runs it and fails when
// the block no longer matches (numbers aside: pids, ports, times and descriptors differ from run to
// run), and `node scripts/doc-samples.js --write` (part of `npm run docs:assets`) rewrites every
// block from a run made now. `<!-- output excerpt: posix-servers ARGS -->`: each line of the block is
// one the command printed, in order (the docs quote the lines that matter; an excerpt that no longer
// matches is reported, to be edited by hand). A `serve` is stopped with SIGINT once it has started (its startup
// printed), so its sample is the start, the trace up to then, the close and the final stats.
'use strict';
const { spawn } = require('node:child_process');
const { readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MARKER = /^<!-- output( excerpt)?: (.+) -->$/;

/** The markdown files whose samples are kept. */
function docFiles(root = ROOT) {
  return [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
}

/** Every sample: its file, the command, the fence's body lines [start, end) and its text. */
function findSamples(root = ROOT) {
  const samples = [];
  for (const file of docFiles(root)) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = MARKER.exec(lines[i].trim());
      if (!m) continue;
      const open = i + 1;
      if (!lines[open]?.startsWith('```')) throw new Error(`${file}:${i + 1}: an output marker must be followed by a fence`);
      let close = open + 1;
      while (close < lines.length && !lines[close].startsWith('```')) close++;
      samples.push({
        file,
        line: i + 1,
        command: m[2],
        excerpt: m[1] !== undefined,
        start: open + 1,
        end: close,
        text: lines.slice(open + 1, close).join('\n'),
      });
    }
  }
  return samples;
}

/** Numbers (pids, ports, descriptors, times) and the padding around them do not count. */
function normalize(text) {
  return text
    .split('\n')
    .map((l) => l.replace(/\d+/g, 'N').replace(/\s+/g, ' ').trim())
    .join('\n')
    .trim();
}

/**
 * Whether a sample is what its command printed: the whole of it, or, for an excerpt, each of its
 * lines, in order, among the printed lines (numbers aside in both).
 */
function matches(sample, printed) {
  if (!sample.excerpt) return normalize(sample.text) === normalize(printed);
  const out = normalize(printed).split('\n');
  let at = 0;
  for (const line of normalize(sample.text).split('\n')) {
    if (line === '') continue;
    while (at < out.length && out[at] !== line) at++;
    if (at === out.length) return false;
    at++;
  }
  return true;
}

/** Runs a sample's command (`posix-servers ARGS`) and resolves with what it printed on stdout. */
function runSample(command) {
  const argv = command.split(/\s+/);
  if (argv[0] !== 'posix-servers') return Promise.reject(new Error(`not a posix-servers command: ${command}`));
  const child = spawn(process.execPath, [CLI, ...argv.slice(1)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let stopper = null;
  child.stderr.on('data', (d) => (err += d));
  child.stdout.on('data', (d) => {
    out += d;
    // A server: stopped once it has printed its start (and its startup trace, written in the same turn).
    if (argv[1] === 'serve' && stopper === null && /connect with: .*\n/.test(out)) {
      stopper = setTimeout(() => child.kill('SIGINT'), 300);
    }
  });
  const limit = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolveRun, reject) => {
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      if (code !== 0) reject(new Error(`${command}: exit ${code ?? signal}\n${err}`));
      else resolveRun(out.replace(/\n$/, ''));
    });
  });
}

/** Rewrites every sample from a run made now. */
async function writeSamples(root = ROOT) {
  const byFile = new Map();
  for (const s of findSamples(root)) {
    const list = byFile.get(s.file) ?? [];
    list.push(s);
    byFile.set(s.file, list);
  }
  for (const [file, samples] of byFile) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n');
    // From the last to the first, so that earlier line numbers stay right.
    for (const s of samples.reverse()) {
      const text = await runSample(s.command);
      // A sample that differs only in numbers (pids, ports, times) is kept: no churn in the docs.
      const changed = !matches(s, text);
      if (changed && s.excerpt) {
        // Which lines an excerpt keeps is a writer's choice: say so, rewrite nothing.
        process.stdout.write(`${file}:${s.line}: ${s.command} (an excerpt that no longer matches: edit it)\n`);
        process.exitCode = 1;
        continue;
      }
      if (changed) lines.splice(s.start, s.end - s.start, ...text.split('\n'));
      process.stdout.write(`${file}:${s.line}: ${s.command}${changed ? ' (rewritten)' : ' (unchanged)'}\n`);
    }
    writeFileSync(join(root, file), lines.join('\n'));
  }
}

module.exports = { findSamples, matches, normalize, runSample, writeSamples, MARKER };

if (require.main === module) {
  if (process.argv[2] !== '--write') {
    process.stderr.write('usage: node scripts/doc-samples.js --write\n');
    process.exit(2);
  }
  writeSamples().catch((e) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  });
}
