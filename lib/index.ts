export { startServer, PosixServer } from './server/server';
export type { ServerEvents } from './server/server';
export type { AddressInfo } from './server/backend';
export type { ServerStats } from './server/server';
export {
  MODELS,
  NATIVE_MODELS,
  POOL_MODELS,
  PROCESS_MODELS,
  JS_MODELS,
  HANDLERS,
  RPC_DEFAULT_MAX_BYTES,
  RPC_MAX_BYTES_LIMIT,
  RPC_MAX_LINE,
  EXEC_MODELS,
  WHEN_FULL,
  WHEN_FULL_WAIT_MODELS,
  ACCEPT_LOCKS,
  PRETHREAD_ACCEPT_LOCKS,
  SCHEDULING_POLICIES,
  URING_RECEIVES,
  MAX_WORKERS,
  DEFAULT_BACKLOG,
} from './server/options';
export { MAX_CLIENTS_LIMIT, FORK_MAX_CLIENTS_LIMIT, MAX_DOOR_RULES } from './server/limits';
export type {
  AcceptLock,
  CloseOptions,
  ExecHandler,
  ExecStderr,
  Handler,
  Model,
  SchedulingPolicy,
  ServerOptions,
  ServiceName,
  WhenFull,
} from './server/options';
export type {
  ConnectionEvent,
  DisconnectEvent,
  DisconnectReason,
  Peer,
  ReapEvent,
  RejectEvent,
  RejectReason,
  TraceCall,
  TraceEvent,
} from './server/events';
export { TRACE_CALLS } from './server/events';
export type { SystemError } from './util/errors';
// The benchmark's load generator (UNP ch. 30's client among its modes), for any server.
export { runLoad } from './bench/loadgen';
export type { LoadExpect, LoadMode, LoadOptions, LoadResult } from './bench/loadgen';
