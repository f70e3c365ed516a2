// A fast prediction server for the data-plane benchmark: answers a predict request without
// parsing it, by replacing the body's leading {"instances" with {"predictions" (so the answer
// has exactly one prediction per instance). Logs, as JSON lines on stdout, its process start,
// when it listens, its first health answer and its first predict request (epoch ms; the host
// and the container share one clock), for the start-up measurement.
import http from 'node:http';

const port = Number(process.env.AIP_HTTP_PORT || 8080);
const healthRoute = process.env.AIP_HEALTH_ROUTE || '/health';
const predictRoute = process.env.AIP_PREDICT_ROUTE || '/predict';
const IN = Buffer.from('{"instances"');
const OUT = Buffer.from('{"predictions"');
const log = (event) => process.stdout.write(`${JSON.stringify({ event, t: Date.now() })}\n`);
let firstHealth = true;
let firstPredict = true;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === healthRoute) {
    if (firstHealth) {
      firstHealth = false;
      log('first-health');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
    res.end('{}');
    return;
  }
  if (req.method === 'POST' && req.url === predictRoute) {
    if (firstPredict) {
      firstPredict = false;
      log('first-predict');
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      if (body.length < IN.length || !body.subarray(0, IN.length).equals(IN)) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('body does not start with {"instances"');
        return;
      }
      const tail = body.subarray(IN.length);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': OUT.length + tail.length });
      res.write(OUT);
      res.end(tail);
    });
    return;
  }
  res.writeHead(404);
  res.end();
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
process.stdout.write(`${JSON.stringify({ event: 'process-start', t: Math.round(performance.timeOrigin) })}\n`);
server.listen(port, '0.0.0.0', () => log('listening'));
process.on('SIGTERM', () => process.exit(0));
