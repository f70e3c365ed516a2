/**
 * Recognises the log lines behind the classic "works with docker run, fails on Vertex" failures.
 * Pure: one line in, at most one signal out.
 */
export type LogSignal =
  | { kind: 'missing-file'; path: string; line: string }
  | { kind: 'missing-shared-library'; library: string; line: string }
  | { kind: 'permission-denied'; path: string; line: string }
  | { kind: 'exec-format-error'; line: string }
  | { kind: 'server-listening'; line: string }
  /** A Python traceback or a WSGI/ASGI worker's death: a worker can crash while its parent process stays up. */
  | { kind: 'worker-crashed'; line: string }
  /** A source line (as a Python traceback shows it) that opens a file for writing: the next "no such file" is a write. */
  | { kind: 'open-for-write'; line: string };

const missingFilePatterns = [
  /No such file or directory: '([^']+)'/, // Python FileNotFoundError
  /can't open '([^']+)': No such file or directory/, // busybox / dash
  /open ([^\s:]+): no such file or directory/, // Go
  /ENOENT: no such file or directory, open '([^']+)'/, // Node
  /^(?:[\w.-]+: )?(\/[^\s:]+): No such file or directory$/, // coreutils: cat: /x: No such file...
];
const sharedLibrary = /([\w.+-]+\.so(?:\.[\w.]+)?): cannot open shared object file/;
const permissionPatterns = [/Permission denied: '([^']+)'/, /can't create '([^']+)': Permission denied/, /open ([^\s:]+): permission denied/, /EACCES: permission denied, open '([^']+)'/];
const execFormat = /exec format error/i;
const workerCrash = /^(Traceback \(most recent call last\):|Process SpawnProcess-\d+:)|Exception in worker process|Worker failed to boot|Worker \(pid:\d+\) (exited with code|was sent SIG)|Child process \[\d+\] died/;
/** open(..., 'w' / "wb" / mode="a" ...), and the common writers of Python data libraries. */
const openForWrite = /\bopen\(.*,\s*(?:mode\s*=\s*)?['"][wax]b?\+?['"]|\.(?:to_csv|to_parquet|to_json|savefig|save_model|save)\(|\b(?:joblib|pickle)\.dump\(|\bnp\.save[tz]?\(/;
const listening = /(Running on https?:\/\/|Uvicorn running on|Listening (?:on|at) |Serving HTTP on|server (?:started|listening) on port)/i;

/** One cheap test first: most log lines mention none of the failures. */
const anyHint = /such file|shared object|ermission denied|exec format|istening|unning on|erving HTTP|server (?:started|listening)|raceback|orker|pawnProcess|hild process|open\(|save|\.to_|dump\(/i;

export function scanLogLine(line: string): LogSignal | undefined {
  if (!anyHint.test(line)) return undefined;
  const lib = sharedLibrary.exec(line);
  if (lib) return { kind: 'missing-shared-library', library: lib[1]!, line };
  for (const pattern of missingFilePatterns) {
    const m = pattern.exec(line);
    if (m) return { kind: 'missing-file', path: m[1]!, line };
  }
  for (const pattern of permissionPatterns) {
    const m = pattern.exec(line);
    if (m) return { kind: 'permission-denied', path: m[1]!, line };
  }
  if (execFormat.test(line)) return { kind: 'exec-format-error', line };
  if (workerCrash.test(line.replace(/^\[[^\]]*\] (\[\d+\] )?(\[\w+\] )?/, ''))) return { kind: 'worker-crashed', line };
  if (listening.test(line)) return { kind: 'server-listening', line };
  if (openForWrite.test(line)) return { kind: 'open-for-write', line };
  return undefined;
}
