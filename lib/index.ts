export { startServer, PosixServer } from './server';
export type { ServerEvents } from './server';
export type { AddressInfo, ServerStats } from './backend';
export { MODELS, HANDLERS, MAX_CLIENTS_LIMIT } from './options';
export type { CloseOptions, Handler, Model, ServerOptions } from './options';
export type {
  ConnectionEvent,
  DisconnectEvent,
  DisconnectReason,
  Peer,
  ReapEvent,
  RejectEvent,
  RejectReason,
} from './events';
export type { SystemError } from './errors';
