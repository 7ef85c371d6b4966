// Property-based: random input never crashes Node, only throws the documented errors.
import fc from 'fast-check';
import { MODELS, startServer } from '../lib';
import { EventDecoder, eventRecordSize } from '../lib/server/events';
import { resolveOptions } from '../lib/server/options';

const anything = fc.anything({ withBigInt: true, withNullPrototype: true, withTypedArray: true });

test('option validation: any input either resolves or throws a TypeError/RangeError', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        anything,
        fc.record(
          {
            model: fc.oneof(fc.constantFrom(...MODELS), anything),
            acceptLock: fc.oneof(fc.constantFrom('none', 'flock', 'mutex', 'pass', 'main'), anything),
            schedulingPolicy: fc.oneof(fc.constantFrom('rr', 'none'), anything),
            workers: fc.oneof(fc.integer({ min: -1, max: 70 }), anything),
            host: fc.oneof(fc.constantFrom('127.0.0.1', '::1'), anything),
            port: fc.oneof(fc.integer({ min: -10, max: 70000 }), anything),
            maxClients: fc.oneof(fc.integer({ min: -1, max: 5000 }), anything),
            backlog: fc.oneof(fc.integer({ min: -1, max: 70000 }), anything),
            handler: fc.oneof(fc.constantFrom('echo', 'upper'), anything),
            idleTimeoutMs: fc.oneof(fc.integer(), anything),
            trace: anything,
          },
          { requiredKeys: [] },
        ),
      ),
      (input) => {
        try {
          const o = resolveOptions(input);
          // What passes validation is within the documented ranges.
          expect(MODELS).toContain(o.model);
          expect(o.model === 'prethread' ? ['mutex', 'main'] : ['none', 'flock', 'mutex', 'pass']).toContain(o.acceptLock);
          expect(['rr', 'none']).toContain(o.schedulingPolicy);
          expect(o.workers).toBeGreaterThanOrEqual(1);
          expect(o.workers).toBeLessThanOrEqual(64);
          expect(o.port).toBeGreaterThanOrEqual(0);
          expect(o.port).toBeLessThanOrEqual(65535);
          expect(o.maxClients).toBeGreaterThanOrEqual(1);
        } catch (e) {
          expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
          expect((e as Error).message).toMatch(/option|argument/);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test('startServer with random options throws synchronously or starts a server that closes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        model: fc.constantFrom(...MODELS, 'x'),
        maxClients: fc.integer({ min: -2, max: 3 }),
        handler: fc.constantFrom('echo', 'upper', 'rot13'),
      }),
      async (input) => {
        let server;
        try {
          server = startServer(input as never);
        } catch (e) {
          expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
          return;
        }
        await (await server).close({ timeoutMs: 0 });
      },
    ),
    { numRuns: 30 },
  );
});

test('event decoder: random bytes in random chunks decode without throwing, record by record', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20 * eventRecordSize() }), fc.array(fc.nat(100), { maxLength: 20 }), (bytes, cuts) => {
      // Both meanings of the slot field (thread slot, pool worker) decode the same bytes alike.
      const slotIs = bytes.length % 2 === 0 ? 'slot' : 'worker';
      const whole = new EventDecoder(slotIs).push(Buffer.from(bytes));
      const chunked = new EventDecoder(slotIs);
      const events = [];
      let at = 0;
      for (const cut of cuts) {
        events.push(...chunked.push(Buffer.from(bytes.subarray(at, at + cut))));
        at += cut;
      }
      events.push(...chunked.push(Buffer.from(bytes.subarray(at))));
      // Chunk boundaries never change what is decoded; at most one event per whole record.
      expect(events).toEqual(whole);
      expect(whole.length).toBeLessThanOrEqual(Math.floor(bytes.length / eventRecordSize()));
    }),
    { numRuns: 500 },
  );
});
