/** How to reach an engine: a socket path, or a host and port over http, https or ssh. */
export interface EngineOptions {
  socketPath?: string;
  host?: string;
  port?: number | string;
  protocol?: 'http' | 'https' | 'ssh';
  /** ssh user name. */
  username?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}
