export { startServer, PosixServer } from './server';
export type { ServerEvents } from './server';
export type { AddressInfo } from './backend';
export type { ServerStats } from './server';
export { MODELS, NATIVE_MODELS, JS_MODELS, HANDLERS, MAX_CLIENTS_LIMIT, FORK_MAX_CLIENTS_LIMIT, MAX_WORKERS } from './options';
export type { CloseOptions, Handler, Model, ServerOptions } from './options';
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
} from './events';
export { TRACE_CALLS } from './events';
export type { SystemError } from './errors';
