import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Client } from 'ssh2';
import type { EngineOptions } from './engineOptions.js';

/**
 * Reaching an engine over ssh, as the docker CLI does for `ssh://user@host`: every HTTP
 * connection is a channel running `docker system dial-stdio` on the remote host, authenticated
 * by the user's ssh agent (SSH_AUTH_SOCK). An ssh connection carries up to CHANNELS_PER_SESSION
 * channels at once (OpenSSH's MaxSessions is 10), more connections are opened when needed, and a
 * connection holds the process open only while a channel is open. Loaded only for ssh:// hosts.
 */
const CHANNELS_PER_SESSION = 8;

interface Session {
  ready: Promise<Client>;
  socket: net.Socket;
  channels: number;
}

const sessions = new Map<string, Session[]>();

function session(options: EngineOptions): Session {
  const host = options.host ?? 'localhost';
  const port = Number(options.port ?? 22);
  const key = `${options.username ?? ''}@${host}:${port}`;
  const open = sessions.get(key) ?? [];
  sessions.set(key, open);
  const existing = open.find((s) => s.channels < CHANNELS_PER_SESSION);
  if (existing) return existing;
  const socket = net.connect({ host, port });
  const conn = new Client();
  const forget = () => {
    const index = open.indexOf(current);
    if (index >= 0) open.splice(index, 1);
  };
  const ready = new Promise<Client>((resolve, reject) => {
    conn.once('ready', () => {
      if (current.channels === 0) socket.unref();
      resolve(conn);
    });
    conn.on('error', (error) => {
      forget();
      reject(error);
    });
    conn.on('close', () => {
      forget();
      reject(Object.assign(new Error('the ssh connection closed'), { code: 'ECONNRESET' }));
    });
  });
  ready.catch(() => undefined);
  const current: Session = { ready, socket, channels: 0 };
  open.push(current);
  conn.connect({
    sock: socket,
    host,
    port,
    ...(options.username ? { username: options.username } : {}),
    ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
  });
  return current;
}

/** An http.Agent whose connections are `docker system dial-stdio` channels (not kept alive). */
export function sshAgent(options: EngineOptions): http.Agent {
  const agent = new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: unknown }).createConnection = (_: unknown, callback: (error: Error | null, socket?: Duplex) => void) => {
    const current = session(options);
    current.channels += 1;
    current.socket.ref();
    const release = () => {
      current.channels -= 1;
      if (current.channels === 0) current.socket.unref();
    };
    current.ready.then(
      (conn) =>
        conn.exec('docker system dial-stdio', (error, channel) => {
          if (error) {
            release();
            return callback(error);
          }
          channel.once('close', release);
          // http expects a socket: give the channel the few socket methods it may call.
          const socket = channel as unknown as Duplex & Record<string, unknown>;
          for (const method of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) socket[method] ??= () => socket;
          callback(null, socket);
        }),
      (error: Error) => {
        release();
        callback(error);
      },
    );
    return undefined;
  };
  return agent;
}
