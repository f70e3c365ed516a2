import { describe, expect, it } from 'vitest';
import { serverChecks } from '../../src/doctor/liveChecks.js';
import { resolveLinks } from '../../src/doctor/scanImageFilesystem.js';
import { guessContract, resolveUid, staticChecks, type StaticInput } from '../../src/doctor/staticChecks.js';
import { dynamicRange, readElfDependencies } from '../../src/doctor/elfDependencies.js';
import type { ImageDetails } from '../../src/runtime/containerEngine.js';
import type { BatchPredictionJobResource } from '../../src/report/jobResource.js';

const image: ImageDetails = { id: 'sha256:x', architecture: 'amd64', os: 'linux', user: '', entrypoint: ['python', '/app/m.py'], cmd: null, workingDir: '/app', env: [], exposedPorts: [], sizeBytes: 100 * 2 ** 20 };
const input = (over: Partial<StaticInput> = {}, imageOver: Partial<ImageDetails> = {}): StaticInput => ({
  imageUri: 'img',
  image: { ...image, ...imageOver },
  history: [{ createdBy: '/bin/sh -c #(nop) COPY file:abc in /app', sizeBytes: 5 }],
  hostArchitecture: 'amd64',
  filesystem: { libraries: { sharedObjects: 3, unchecked: [], missing: [] }, directories: new Map() },
  port: 8080,
  contract: 'files',
  ...over,
});
const statusOf = (i: StaticInput, id: string) => staticChecks(i).find((c) => c.id === id)?.status;

describe('static checks', () => {
  it('image-size warns over 10 GiB and names the largest layers', () => {
    expect(statusOf(input({}, { sizeBytes: 11 * 2 ** 30 }), 'image-size')).toBe('warn');
    expect(statusOf(input(), 'image-size')).toBe('pass');
    expect(staticChecks(input()).find((c) => c.id === 'image-size')!.evidence).toEqual(['5 B  COPY file:abc in /app']);
  });
  it('entrypoint: shell form in ENTRYPOINT or CMD warns; nothing at all fails', () => {
    expect(statusOf(input({}, { entrypoint: ['/bin/sh', '-c', 'python m.py'] }), 'entrypoint')).toBe('warn');
    expect(statusOf(input({}, { entrypoint: null, cmd: ['/bin/sh', '-c', 'python m.py'] }), 'entrypoint')).toBe('warn');
    expect(statusOf(input({}, { entrypoint: null, cmd: null }), 'entrypoint')).toBe('fail');
  });
  it('shared libraries: unreadable objects warn, missing ones fail', () => {
    expect(statusOf(input({ filesystem: { libraries: { sharedObjects: 2, unchecked: ['/x.so'], missing: [] }, directories: new Map() } }), 'shared-libraries')).toBe('warn');
    expect(statusOf(input({ filesystem: { libraries: { sharedObjects: 2, unchecked: [], missing: [{ library: 'libGL.so.1', neededBy: ['/cv2.so'] }] }, directories: new Map() } }), 'shared-libraries')).toBe('fail');
  });
  it('ports are only checked for servers', () => {
    expect(statusOf(input(), 'ports')).toBeUndefined();
    expect(statusOf(input({ contract: 'server' }, { exposedPorts: ['5000/tcp'] }), 'ports')).toBe('warn');
  });
  it('resolves users through /etc/passwd', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n';
    expect(resolveUid('app', passwd)).toBe(1000);
    expect(resolveUid('1234:5', passwd)).toBe(1234);
    expect(resolveUid('ghost', passwd)).toBeUndefined();
  });
  it('guesses the contract from EXPOSE and the command', () => {
    expect(guessContract({ ...image, cmd: ['uvicorn', 'app:app'] }).contract).toBe('server');
    expect(guessContract({ ...image, exposedPorts: ['8080/tcp'] }).contract).toBe('server');
    expect(guessContract(image)).toEqual({ contract: 'files', sure: true, reasons: ['no exposed port and no server program in its command'] });
  });
});

describe('live checks', () => {
  it('a slow start-up (over 10 minutes) warns', () => {
    const job = {
      emulator: {
        startup: { outcome: 'ready', afterMs: 11 * 60_000 },
        diagnoses: [],
        routes: { health: '/h', predict: '/p', port: 8080 },
        stats: { successful: 0, failed: 0, incomplete: 0, maxResponseBytes: 0 },
        failuresByKind: {},
        limits: { memoryBytes: 2 ** 30, machineType: 'n1-standard-4' },
        peakMemoryBytes: 2 ** 20,
      },
    } as unknown as BatchPredictionJobResource;
    expect(serverChecks(job, 0).find((c) => c.id === 'startup-time')!.status).toBe('warn');
  });

  it("the memory check judges the peak against the limit the jobs apply: the machine's memory less what Vertex keeps", () => {
    const GiB = 2 ** 30;
    const job = (peak: number, oom = false) =>
      ({
        emulator: {
          startup: { outcome: 'ready', afterMs: 1000 },
          diagnoses: oom ? [{ code: 'OUT_OF_MEMORY', severity: 'error', message: 'oom' }] : [],
          routes: { health: '/h', predict: '/p', port: 8080 },
          stats: { successful: 0, failed: 0, incomplete: 0, maxResponseBytes: 0 },
          failuresByKind: {},
          limits: { memoryBytes: 9 * GiB, machineMemoryBytes: 15 * GiB, memoryReserveBytes: 6 * GiB, machineType: 'n1-standard-4' },
          peakMemoryBytes: peak,
        },
      }) as unknown as BatchPredictionJobResource;
    const memory = (j: BatchPredictionJobResource) => serverChecks(j, 0).find((c) => c.id === 'memory')!;
    // 8 GiB is 53% of the machine but 89% of what Vertex leaves: a warning.
    expect(memory(job(8 * GiB))).toMatchObject({ status: 'warn', summary: 'peak 8.0 GiB of 9.0 GiB (n1-standard-4: 15 GiB less 6.0 GiB Vertex keeps), 88.9%' });
    expect(memory(job(GiB)).status).toBe('pass');
    expect(memory(job(0, true))).toMatchObject({ status: 'fail', summary: 'ran out of the 9.0 GiB (n1-standard-4: 15 GiB less 6.0 GiB Vertex keeps)' });
  });
});

describe('filesystem helpers', () => {
  it('follows symbolic links in every component (merged /usr)', () => {
    const links = new Map([
      ['/lib', 'usr/lib'],
      ['/usr/lib/x86_64-linux-gnu/libz.so.1', 'libz.so.1.2.13'],
      ['/opt/current', '/opt/v2'],
    ]);
    expect(resolveLinks('/lib/x86_64-linux-gnu/libz.so.1', links)).toBe('/usr/lib/x86_64-linux-gnu/libz.so.1.2.13');
    expect(resolveLinks('/opt/current/lib/a.so', links)).toBe('/opt/v2/lib/a.so');
  });

  it('reads DT_NEEDED, RUNPATH and SONAME from a minimal ELF', () => {
    // A hand-made ELF64: header, one PT_LOAD covering the file, one PT_DYNAMIC, a string table.
    const strtab = Buffer.from('\0libgomp.so.1\0$ORIGIN/../lib\0libx.so\0');
    const headerSize = 64;
    const phSize = 56 * 2;
    const strOff = headerSize + phSize;
    const dynOff = strOff + strtab.length + (8 - ((strOff + strtab.length) % 8)) % 8;
    const entries: Array<[bigint, bigint]> = [
      [1n, 1n],
      [29n, 14n],
      [14n, 29n],
      [5n, BigInt(strOff)],
      [10n, BigInt(strtab.length)],
      [0n, 0n],
    ];
    const file = Buffer.alloc(dynOff + entries.length * 16);
    file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
    file.writeUInt16LE(3, 16);
    file.writeBigUInt64LE(BigInt(headerSize), 0x20);
    file.writeUInt16LE(56, 0x36);
    file.writeUInt16LE(2, 0x38);
    const ph = (i: number, type: number, offset: number, size: number) => {
      const at = headerSize + i * 56;
      file.writeUInt32LE(type, at);
      file.writeBigUInt64LE(BigInt(offset), at + 8);
      file.writeBigUInt64LE(BigInt(offset), at + 16);
      file.writeBigUInt64LE(BigInt(size), at + 32);
    };
    ph(0, 1, 0, file.length);
    ph(1, 2, dynOff, entries.length * 16);
    strtab.copy(file, strOff);
    entries.forEach(([tag, value], i) => {
      file.writeBigInt64LE(tag, dynOff + i * 16);
      file.writeBigUInt64LE(value, dynOff + i * 16 + 8);
    });
    const range = dynamicRange(file)!;
    const deps = readElfDependencies(file, file.subarray(range.offset, range.offset + range.length), (o, l) => file.subarray(o, o + l));
    expect(deps).toEqual({ needed: ['libgomp.so.1'], searchPaths: ['$ORIGIN/../lib'], soname: 'libx.so' });
  });
});
