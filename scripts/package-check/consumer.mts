// The same stranger in an ES module (module nodenext): named imports through the package's
// "import" entry, `await using` through [Symbol.asyncDispose].
import { startServer, type PosixServer } from 'posix-servers';

let kept: PosixServer | undefined;
{
  await using server = await startServer({ model: 'thread' });
  kept = server;
  if (!server.listening) throw new Error('not listening');
}
// Left the block: disposed, so closed.
if (kept.address() !== null) throw new Error('await using did not close the server');
console.log('consumer (esm): thread server closed by await using');
