// The reference side of the data-plane case: the least a client must do to push a jsonl file
// through a prediction server. It streams the file, joins `batchSize` raw lines into the same
// body vbe sends ({"instances":[...]}; the input lines are canonical JSON, so the bytes are
// identical), keeps `inFlight` requests in flight on keep-alive sockets from one shared batch
// stream (as vbe's workers do), reads each answer in full, checks the status, and writes nothing.
//
//   node bench/client.mjs --port P --route /predict --file data.jsonl --batch-size 64 --in-flight 2
// Prints one JSON line: {instances, requests, ms, firstRequestEpochMs, responseBytes, errors}.
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    route: { type: 'string', default: '/predict' },
    file: { type: 'string' },
    'batch-size': { type: 'string', default: '64' },
    'in-flight': { type: 'string', default: '2' },
  },
});
const port = Number(values.port);
const batchSize = Number(values['batch-size']);
const inFlight = Number(values['in-flight']);
const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });

async function* batches(file) {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lines = [];
  for await (const line of rl) {
    if (line.trim() === '') continue;
    lines.push(line);
    if (lines.length === batchSize) {
      yield { count: lines.length, body: Buffer.from(`{"instances":[${lines.join(',')}]}`) };
      lines = [];
    }
  }
  if (lines.length) yield { count: lines.length, body: Buffer.from(`{"instances":[${lines.join(',')}]}`) };
}

function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: values.route, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (res) => {
        let bytes = 0;
        res.on('data', (c) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode, bytes }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const started = performance.now();
let firstRequestEpochMs = 0;
const stats = { instances: 0, requests: 0, responseBytes: 0, errors: 0 };
const stream = batches(values.file);
const worker = async () => {
  for (;;) {
    const next = await stream.next();
    if (next.done) return;
    if (!firstRequestEpochMs) firstRequestEpochMs = Date.now();
    const answer = await post(next.value.body);
    stats.requests += 1;
    stats.responseBytes += answer.bytes;
    if (answer.status === 200) stats.instances += next.value.count;
    else stats.errors += 1;
  }
};
await Promise.all(Array.from({ length: inFlight }, worker));
const ms = performance.now() - started;
agent.destroy();
process.stdout.write(`${JSON.stringify({ ...stats, ms, firstRequestEpochMs })}\n`);
