import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile, mkdir, copyFile, chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import { Server, utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, runVbe, tempDir, waitFor } from '../helpers/engine.js';

/**
 * Remote engines the way users reach them: `tcp://` with TLS client certificates
 * (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and `ssh://user@host` (`docker system dial-stdio` over
 * an ssh session, authenticated by the user's ssh agent). Both are relays to this engine's
 * socket, so every call of a run goes through the remote transport.
 */
const copyScript = ['--command', 'sh', '--command', '-c', '--command', 'cp $AIP_BATCH_INPUT_URIS $AIP_BATCH_OUTPUT_DIR/copy.jsonl && echo done'];

function relayToEngine(client: NodeJS.ReadWriteStream & { destroy(): void; on(event: 'error', fn: () => void): unknown }, onEnd?: () => void): void {
  const engine = net.connect('/var/run/docker.sock');
  client.pipe(engine).pipe(client);
  client.on('error', () => engine.destroy());
  engine.on('error', () => client.destroy());
  engine.on('close', () => onEnd?.());
}

describe('remote engines over TLS and ssh', () => {
  let work: string;
  let input: string;
  let certs: string;
  let tlsServer: tls.Server;
  let tlsPort: number;
  let sshServer: Server;
  let sshPort: number;
  let agent: ChildProcess;
  let agentSocket: string;
  const unsetHost = { DOCKER_HOST: undefined, DOCKER_CONTEXT: undefined, DOCKER_TLS_VERIFY: undefined, DOCKER_CERT_PATH: undefined, SSH_AUTH_SOCK: undefined };

  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{"x": 1}\n');

    // A CA, a server certificate for 127.0.0.1 and a client certificate, as `dockerd --tlsverify` uses.
    certs = path.join(work, 'certs');
    await mkdir(certs);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: certs, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=vbe-test-ca');
    await writeFile(path.join(certs, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    await writeFile(path.join(certs, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'vbe-client']] as const) {
      openssl('req', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}-cert.pem`, '-days', '2', '-extfile', `${name}.ext`);
    }
    await copyFile(path.join(certs, 'client-cert.pem'), path.join(certs, 'cert.pem'));
    await copyFile(path.join(certs, 'client-key.pem'), path.join(certs, 'key.pem'));
    const [key, cert, ca] = await Promise.all(['server-key.pem', 'server-cert.pem', 'ca.pem'].map((f) => readFile(path.join(certs, f))));
    tlsServer = tls.createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, (socket) => relayToEngine(socket));
    tlsServer.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    tlsPort = (tlsServer.address() as net.AddressInfo).port;

    // An ssh server that accepts one user's key and runs `docker system dial-stdio` as a relay.
    const hostKey = utils.generateKeyPairSync('ed25519');
    const userKey = utils.generateKeyPairSync('ed25519');
    const allowed = utils.parseKey(userKey.public);
    if (allowed instanceof Error) throw allowed;
    sshServer = new Server({ hostKeys: [hostKey.private] }, (client) => {
      client.on('authentication', (ctx) => {
        if (ctx.method !== 'publickey' || ctx.username !== 'tester') return ctx.reject(['publickey']);
        const offered = ctx.key.data;
        const expected = allowed.getPublicSSH();
        if (ctx.key.algo !== allowed.type || offered.length !== expected.length || !timingSafeEqual(offered, expected)) return ctx.reject(['publickey']);
        if (!ctx.signature) return ctx.accept(); // the client asks whether the key would do
        if (allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
        ctx.accept();
      });
      client.on('ready', () => {
        client.on('session', (accept) => {
          const session = accept();
          session.on('exec', (acceptExec, rejectExec, info) => {
            if (info.command !== 'docker system dial-stdio') return rejectExec();
            const channel = acceptExec();
            relayToEngine(channel as unknown as NodeJS.ReadWriteStream & { destroy(): void; on(event: 'error', fn: () => void): unknown }, () => {
              channel.exit(0);
              channel.end();
            });
          });
        });
      });
      client.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => sshServer.listen(0, '127.0.0.1', resolve));
    sshPort = (sshServer.address() as net.AddressInfo).port;

    // The user's ssh agent, holding the key.
    const keyFile = path.join(work, 'id_ed25519');
    await writeFile(keyFile, userKey.private);
    await chmod(keyFile, 0o600);
    agentSocket = path.join(work, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    // The agent's socket appears before it listens: add the key once it takes it.
    await waitFor(
      'the ssh agent to take the key',
      async () => {
        try {
          execFileSync('ssh-add', [keyFile], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket }, stdio: 'pipe' });
          return true;
        } catch {
          return undefined;
        }
      },
      10_000,
    );
  });

  afterAll(async () => {
    agent?.kill();
    await Promise.all([
      new Promise<void>((resolve) => (tlsServer ? tlsServer.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (sshServer ? sshServer.close(() => resolve()) : resolve())),
    ]);
  });

  it('DOCKER_HOST=tcp://... with DOCKER_TLS_VERIFY and client certificates: a run works end to end over TLS', async () => {
    const out = path.join(work, 'tls-run');
    const result = await runVbe(['run', '--image', BUSYBOX, '--pull', 'never', '--input', input, '--output', out, '--json', ...copyScript], {
      ...unsetHost,
      DOCKER_HOST: `tcp://127.0.0.1:${tlsPort}`,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
    });
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.emulator.outputs.files).toEqual([{ path: 'copy.jsonl', sizeBytes: 9 }]);
    expect(job.emulator.logTail).toEqual(['done']);
  });

  it('TLS without a client certificate the engine accepts: exit 3, saying what was tried', async () => {
    const caOnly = path.join(work, 'ca-only');
    await mkdir(caOnly);
    await copyFile(path.join(certs, 'ca.pem'), path.join(caOnly, 'ca.pem'));
    const result = await runVbe(['run', '--image', BUSYBOX, '--pull', 'never', '--input', input, '--output', path.join(work, 'tls-denied')], {
      ...unsetHost,
      DOCKER_HOST: `tcp://127.0.0.1:${tlsPort}`,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: caOnly,
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`Tried: tcp://127.0.0.1:${tlsPort} (DOCKER_HOST: `);
  });

  it('DOCKER_HOST=ssh://user@host: a run works end to end over ssh with the key in the ssh agent', async () => {
    const out = path.join(work, 'ssh-run');
    const result = await runVbe(['run', '--image', BUSYBOX, '--pull', 'never', '--input', input, '--output', out, '--json', ...copyScript], {
      ...unsetHost,
      DOCKER_HOST: `ssh://tester@127.0.0.1:${sshPort}`,
      SSH_AUTH_SOCK: agentSocket,
    });
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.emulator.outputs.files).toEqual([{ path: 'copy.jsonl', sizeBytes: 9 }]);
    expect(job.emulator.logTail).toEqual(['done']);
  });

  it('ssh without a key the host accepts: exit 3', async () => {
    const result = await runVbe(['run', '--image', BUSYBOX, '--pull', 'never', '--input', input, '--output', path.join(work, 'ssh-denied')], {
      ...unsetHost,
      DOCKER_HOST: `ssh://tester@127.0.0.1:${sshPort}`,
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`Tried: ssh://tester@127.0.0.1:${sshPort} (DOCKER_HOST: `);
  });
});
