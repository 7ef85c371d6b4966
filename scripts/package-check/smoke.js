// Run by scripts/check-package.sh in a project that installed the tarball with --ignore-scripts,
// under each Node it checks: the prebuilt addon is found at require, and a fork and a thread server
// start, echo and close.
const echo = require('./echo');
const { startServer } = require('posix-servers');

(async () => {
  for (const model of ['fork', 'thread']) {
    const server = await startServer({ model, signal: AbortSignal.timeout(60000) });
    const reply = await echo(server.address().port, `smoke ${model}`);
    await server.close();
    if (reply !== `smoke ${model}`) throw new Error(`${model} replied ${JSON.stringify(reply)}`);
    console.log(`smoke: ${model} server started, echoed and closed (Node ${process.version})`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
