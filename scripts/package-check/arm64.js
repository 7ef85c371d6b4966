// Run by scripts/check-package.sh under qemu-user, by Node's own linux-arm64 binary, in a project
// that installed the tarball with --ignore-scripts: the prebuilt linux-arm64 files load and run.
// Echoes through the fork, thread, prefork and epoll models (the addon, and the master program for
// fork and prefork) and through the C reference server of each of those designs.
const echo = require('./echo');
const { dirname, join } = require('node:path');
const { startServer } = require('posix-servers');

const root = dirname(require.resolve('posix-servers/package.json'));
const { startReference } = require(join(root, 'dist', 'bench', 'reference.js'));
const MODELS = ['fork', 'thread', 'prefork', 'epoll'];

async function expectEcho(what, port) {
  const text = `hello from ${what} on ${process.arch}`;
  const reply = await echo(port, text);
  if (reply !== text) throw new Error(`${what} replied ${JSON.stringify(reply)}`);
  return reply;
}

(async () => {
  if (process.arch !== 'arm64') throw new Error(`this Node is ${process.arch}, not arm64`);
  const seen = [];
  for (const model of MODELS) {
    const server = await startServer({
      model,
      ...(model === 'prefork' ? { workers: 2 } : {}),
      signal: AbortSignal.timeout(120000),
    });
    await expectEcho(model, server.address().port);
    await server.close();
    seen.push(model);
  }
  const addon = Object.keys(require.cache).find((k) => k.endsWith('.node'));
  const want = join(root, 'prebuilds', 'linux-arm64', 'posix_servers.node');
  if (addon !== want) throw new Error(`the addon loaded is ${addon}, not ${want}`);
  for (const model of MODELS) {
    const ref = await startReference(model, model === 'prefork' ? { workers: 2 } : {});
    try {
      await expectEcho(`ref-${model}`, ref.port);
    } finally {
      await ref.close();
    }
    seen.push(`ref-${model}`);
  }
  console.log(`arm64: ${seen.join(', ')} echoed (Node ${process.version} ${process.arch}, ${addon.slice(root.length + 1)})`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
