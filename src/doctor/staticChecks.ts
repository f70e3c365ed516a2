import type { ImageDetails } from '../runtime/containerEngine.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import { isLinuxAmd64 } from '../verdict/judgeImage.js';
import { installFix } from '../verdict/libraryPackages.js';
import type { Contract, DoctorCheck } from './doctorCheck.js';
import type { ImageFilesystemReport } from './scanImageFilesystem.js';

export { guessContract } from './guessContract.js';

export interface StaticInput {
  imageUri: string;
  image: ImageDetails;
  history: Array<{ createdBy: string; sizeBytes: number }>;
  hostArchitecture: string;
  filesystem: ImageFilesystemReport;
  port: number;
  /** The job's args, when the user gave them: then an args-replace-CMD image is a failure. */
  args?: string[];
  contract: Contract;
}

const LARGE_IMAGE_BYTES = 10 * 1024 ** 3;

function isShellForm(parts: string[] | null): boolean {
  return !!parts && parts.length >= 3 && /^(\/bin\/)?(ba|da)?sh$/.test(parts[0]!) && parts[1] === '-c';
}

const show = (parts: string[] | null) => (parts ? JSON.stringify(parts) : 'none');

/** Checks read from the image's config and filesystem, without running it. */
export function staticChecks(input: StaticInput): DoctorCheck[] {
  const { image } = input;
  const checks: DoctorCheck[] = [];
  const platform = `${image.os}/${image.architecture}`;
  checks.push(
    isLinuxAmd64(image)
      ? { id: 'platform', title: 'Platform', status: 'pass', summary: `linux/amd64, as Vertex runs (this engine is ${input.hostArchitecture})` }
      : {
          id: 'platform',
          title: 'Platform',
          status: 'fail',
          summary: `${platform}: Vertex runs only linux/amd64; the container fails with "exec format error"`,
          fix: `docker buildx build --platform linux/amd64 -t ${input.imageUri} .`,
        },
  );

  checks.push(entrypointCheck(input));

  const aipVars = image.env.map((e) => e.split('=')[0]!).filter((n) => n.startsWith('AIP_'));
  checks.push(
    aipVars.length
      ? { id: 'aip-env', title: 'AIP_* variables', status: 'fail', summary: `the image sets ${aipVars.join(', ')}; Vertex reserves AIP_* and rejects them`, fix: 'Remove those ENV lines; Vertex sets the AIP_* variables itself.' }
      : { id: 'aip-env', title: 'AIP_* variables', status: 'pass', summary: 'the image sets no AIP_* variables' },
  );

  checks.push(userCheck(input));

  if (input.contract === 'server') {
    const exposed = image.exposedPorts.map((p) => Number(p.split('/')[0]));
    checks.push(
      exposed.length && !exposed.includes(input.port)
        ? {
            id: 'ports',
            title: 'Ports',
            status: 'warn',
            summary: `EXPOSE ${image.exposedPorts.join(' ')}, but Vertex sends requests to AIP_HTTP_PORT=${input.port}`,
            fix: `Serve on the port in AIP_HTTP_PORT, or declare it in containerSpec.ports (--port ${exposed[0]}).`,
          }
        : { id: 'ports', title: 'Ports', status: 'pass', summary: exposed.length ? `EXPOSE ${image.exposedPorts.join(' ')} matches AIP_HTTP_PORT=${input.port}` : `no EXPOSE; Vertex will use AIP_HTTP_PORT=${input.port}` },
    );
  }

  const largest = [...input.history].sort((a, b) => b.sizeBytes - a.sizeBytes).slice(0, 3).filter((l) => l.sizeBytes > 0);
  checks.push({
    id: 'image-size',
    title: 'Image size',
    status: image.sizeBytes > LARGE_IMAGE_BYTES ? 'warn' : 'pass',
    summary: `${formatBytes(image.sizeBytes)} in ${input.history.length} layers${image.sizeBytes > LARGE_IMAGE_BYTES ? ': every replica pulls it, which can take many minutes' : ''}`,
    evidence: largest.map((l) => `${formatBytes(l.sizeBytes)}  ${l.createdBy.replace(/^\/bin\/sh -c (#\(nop\) )?/, '').slice(0, 100)}`),
    ...(image.sizeBytes > LARGE_IMAGE_BYTES ? { fix: 'Use a slim base, a multi-stage build, and keep model weights in Cloud Storage (AIP_STORAGE_URI).' } : {}),
  });

  const libs = input.filesystem.libraries;
  checks.push(
    libs.missing.length
      ? {
          id: 'shared-libraries',
          title: 'Shared libraries',
          status: 'fail',
          summary: `${libs.missing.map((m) => m.library).join(', ')} needed but not in the image; the import fails at run time, not at build time`,
          evidence: libs.missing.flatMap((m) => m.neededBy.map((f) => `${f} needs ${m.library}`)),
          fix: libs.missing.map((m) => installFix(m.library)).join(' '),
        }
      : {
          id: 'shared-libraries',
          title: 'Shared libraries',
          status: libs.unchecked.length ? 'warn' : 'pass',
          summary: `${libs.sharedObjects} shared objects, every dependency found${libs.unchecked.length ? `; ${libs.unchecked.length} could not be read` : ''}`,
          ...(libs.unchecked.length ? { evidence: libs.unchecked.slice(0, 5) } : {}),
        },
  );
  return checks;
}

function entrypointCheck(input: StaticInput): DoctorCheck {
  const { entrypoint, cmd } = input.image;
  const evidence = [`ENTRYPOINT ${show(entrypoint)}`, `CMD ${show(cmd)}`];
  if (!entrypoint?.length && !cmd?.length) {
    return { id: 'entrypoint', title: 'Entrypoint', status: 'fail', summary: 'no ENTRYPOINT and no CMD: the job has nothing to run unless containerSpec.command is set', evidence, fix: 'Add ENTRYPOINT ["python", "/app/main.py"] (exec form).' };
  }
  if (isShellForm(entrypoint) || (!entrypoint?.length && isShellForm(cmd))) {
    return {
      id: 'entrypoint',
      title: 'Entrypoint',
      status: 'warn',
      summary: 'shell form: PID 1 is /bin/sh, which does not pass SIGTERM on to your program and drops the job\'s args ("$@")',
      evidence,
      fix: 'Use exec form: ENTRYPOINT ["python", "/app/main.py"], or end a wrapper script with exec python ... "$@".',
    };
  }
  if (!entrypoint?.length) {
    return {
      id: 'entrypoint',
      title: 'Entrypoint',
      status: input.args ? 'fail' : 'warn',
      summary: `no ENTRYPOINT: a job's args replace CMD ${show(cmd)} entirely${input.args ? `, so the container would run \`${input.args.join(' ')}\`` : ''}`,
      evidence,
      fix: 'Make the program the ENTRYPOINT (a wrapper that ends with exec python model.py "$@"); a wrapper named in CMD is replaced too.',
    };
  }
  return { id: 'entrypoint', title: 'Entrypoint', status: 'pass', summary: `exec-form ENTRYPOINT; a job's args ${cmd?.length ? `replace CMD ${show(cmd)} and ` : ''}reach the program`, evidence };
}

/** Resolves USER (name, uid, uid:gid) to a uid with the image's /etc/passwd. */
export function resolveUid(user: string, passwd: string | undefined): number | undefined {
  const name = user.split(':')[0]!;
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of (passwd ?? '').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
  }
  return undefined;
}

function userCheck(input: StaticInput): DoctorCheck {
  const user = input.image.user || 'root';
  const uid = user === 'root' ? 0 : resolveUid(user, input.filesystem.passwd);
  if (uid === 0) return { id: 'user', title: 'User', status: 'pass', summary: 'runs as root' };
  if (uid === undefined) {
    return { id: 'user', title: 'User', status: 'fail', summary: `USER ${user} is not in the image's /etc/passwd; the container cannot start as that user`, fix: `Create the user (RUN useradd --uid 1000 ${user}) or use a numeric USER.` };
  }
  const workdir = (input.image.workingDir || '/').replace(/(.)\/+$/, '$1');
  const dir = input.filesystem.directories.get(workdir);
  const writable = !dir || (dir.mode & 0o002) !== 0 || (dir.uid === uid && (dir.mode & 0o200) !== 0);
  return writable
    ? { id: 'user', title: 'User', status: 'pass', summary: `runs as ${user} (uid ${uid}); AIP_BATCH_OUTPUT_DIR is writable by any user, and so is its WORKDIR ${workdir}` }
    : {
        id: 'user',
        title: 'User',
        status: 'warn',
        summary: `runs as ${user} (uid ${uid}), which cannot write its WORKDIR ${workdir} (owner uid ${dir!.uid}, mode ${(dir!.mode & 0o777).toString(8)}): code that writes next to itself fails with "Permission denied"`,
        fix: `Write results to AIP_BATCH_OUTPUT_DIR and scratch files to /tmp, or give the user the directory (RUN chown ${user} ${workdir}).`,
      };
}
