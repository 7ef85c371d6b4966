// The event record is written in C++ and read in TypeScript. Its layout and numberings have one
// source (native/core/event_record.h), exported by the addon; the decoder names what it reads.
// These tests fail when the two sides disagree: a name added on one side only, a field moved or
// widened, two names sharing a number.
import { native } from '../lib/addon';
import { DISCONNECT_REASONS, EVENT_FIELDS, EVENT_TYPES, EventDecoder, REJECT_REASONS, TRACE_CALLS } from '../lib/server/events';

const wire = native.constants.wire;
const sorted = (xs: readonly string[]) => [...xs].sort();

test('every enumeration has the same names on both sides, each with its own number', () => {
  const pairs: Array<[Record<string, number>, readonly string[]]> = [
    [wire.eventTypes, EVENT_TYPES],
    [wire.traceCalls, TRACE_CALLS],
    [wire.disconnectReasons, DISCONNECT_REASONS],
    [wire.rejectReasons, REJECT_REASONS],
  ];
  for (const [native, ts] of pairs) {
    expect(sorted(Object.keys(native))).toEqual(sorted(ts));
    const numbers = Object.values(native);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const n of numbers) expect(Number.isInteger(n)).toBe(true);
  }
});

test('the record: its size, and each field where the decoder reads it, at the width it reads', () => {
  expect(wire.recordSize).toBe(64);
  expect(sorted(Object.keys(wire.fields))).toEqual(sorted(Object.keys(EVENT_FIELDS)));
  for (const [name, width] of Object.entries(EVENT_FIELDS)) {
    const f = wire.fields[name];
    expect({ name, width: f.width }).toEqual({ name, width });
    expect(f.offset + f.width).toBeLessThanOrEqual(wire.recordSize);
  }
  // Fields that are not in the same union arm never overlap.
  const union = new Set(['bytesIn', 'bytesOut', 'fd', 'result']);
  const plain = Object.entries(wire.fields).filter(([n]) => !union.has(n));
  for (const [a, fa] of plain) {
    for (const [b, fb] of plain) {
      if (a < b) expect(fa.offset + fa.width <= fb.offset || fb.offset + fb.width <= fa.offset).toBe(true);
    }
  }
});

// A record built by hand from the addon's layout decodes to the event it describes: the decoder
// reads what the layout says, not numbers of its own.
function record(fields: Record<string, number | bigint | Buffer>): Buffer {
  const buf = Buffer.alloc(wire.recordSize);
  for (const [name, value] of Object.entries(fields)) {
    const { offset, width } = wire.fields[name];
    if (Buffer.isBuffer(value)) value.copy(buf, offset);
    else if (width === 1) buf.writeUInt8(Number(value), offset);
    else if (width === 2) buf.writeUInt16LE(Number(value), offset);
    else if (width === 4) buf.writeInt32LE(Number(value), offset);
    else buf.writeBigInt64LE(BigInt(value), offset);
  }
  return buf;
}

test('records laid out by the addon decode to the events they describe', () => {
  const buf = Buffer.concat([
    record({
      type: wire.eventTypes.disconnect,
      id: 7,
      pid: 1234,
      slot: -1,
      code: wire.disconnectReasons.idle,
      bytesIn: 10n,
      bytesOut: 12n,
      timeNs: 5n,
    }),
    record({
      type: wire.eventTypes.trace,
      code: wire.traceCalls.waitpid,
      pid: 99,
      slot: -1,
      fd: 9n,
      result: 4321n,
      family: 4,
      port: 8080,
      addr: Buffer.from([127, 0, 0, 1]),
      timeNs: 2_000_000n,
    }),
    record({ type: wire.eventTypes.reject, id: 3, slot: -1, code: wire.rejectReasons['no-fd'], detail: 24, family: 4 }),
  ]);
  const events = new EventDecoder().push(buf);
  expect(events.map((e) => e.type)).toEqual(['disconnect', 'trace', 'reject']);
  expect(events[0]).toMatchObject({ event: { id: 7, pid: 1234, reason: 'idle', bytesIn: 10, bytesOut: 12 } });
  expect(events[1]).toMatchObject({
    event: { call: 'waitpid', pid: 99, fd: 9, result: 4321, timeMs: 2, address: { address: '127.0.0.1', port: 8080 } },
  });
  expect(events[2]).toMatchObject({ event: { id: 3, reason: 'no-fd', errno: 'EMFILE' } });
});

test("an Error record names the call that failed; a pool server's slot field is its worker's index", () => {
  const errors = new EventDecoder().push(
    Buffer.concat([
      record({ type: wire.eventTypes.error, code: 98, detail: wire.traceCalls.bind, slot: -1 }),
      record({ type: wire.eventTypes.error, code: 24, detail: 0, slot: -1 }),
      record({ type: wire.eventTypes.error, code: 24, detail: wire.traceCalls['worker-accept'], slot: -1 }),
      record({ type: wire.eventTypes.error, code: 11, detail: wire.traceCalls['pool-fork'], slot: -1 }),
    ]),
  );
  expect(errors).toEqual([
    expect.objectContaining({ type: 'error', errno: 98, syscall: 'bind' }),
    expect.objectContaining({ type: 'error', errno: 24, syscall: 'accept' }), // the accept loop's own
    expect.objectContaining({ type: 'error', errno: 24, syscall: 'accept' }),
    expect.objectContaining({ type: 'error', errno: 11, syscall: 'fork' }),
  ]);
  const connection = record({ type: wire.eventTypes.connection, id: 1, pid: 77, slot: 3, family: 4 });
  const reap = record({ type: wire.eventTypes.reap, id: 0, pid: 77, slot: 3, code: -1, detail: 9 });
  const [pool, poolReap] = new EventDecoder('worker').push(Buffer.concat([connection, reap]));
  expect(pool).toMatchObject({ event: { id: 1, pid: 77, worker: 3 } });
  expect((pool as { event: object }).event).not.toHaveProperty('slot');
  expect(poolReap).toMatchObject({ event: { pid: 77, worker: 3, signal: 'SIGKILL', exitCode: null } });
  const [thread] = new EventDecoder().push(connection);
  expect(thread).toMatchObject({ event: { id: 1, slot: 3 } });
  expect((thread as { event: object }).event).not.toHaveProperty('worker');
});

test('64-bit fields decode beyond 32 bits and below zero: byte counts past 4 GiB, a failed call’s result -1, a clock of weeks', () => {
  const [disconnect, trace] = new EventDecoder().push(
    Buffer.concat([
      record({ type: wire.eventTypes.disconnect, id: 1, slot: -1, bytesIn: 2n ** 40n + 5n, bytesOut: 2n ** 32n }),
      record({
        type: wire.eventTypes.trace,
        code: wire.traceCalls.accept,
        slot: -1,
        fd: -1n,
        result: -(2n ** 33n) - 7n,
        timeNs: 3_000_000_123_456_789n, // ≈ 35 days
      }),
    ]),
  );
  expect(disconnect).toMatchObject({ event: { bytesIn: 2 ** 40 + 5, bytesOut: 2 ** 32 } });
  expect(trace).toMatchObject({ event: { fd: -1, result: -(2 ** 33) - 7 } });
  expect((trace as { event: { timeMs: number } }).event.timeMs).toBeCloseTo(3_000_000_123.456789, 6);
});
