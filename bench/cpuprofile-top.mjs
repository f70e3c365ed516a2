#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the top functions by self time, and self
// time grouped by package / file, as % of the profile's wall time.
//   node bench/cpuprofile-top.mjs <file.cpuprofile> [--top 25] [--inclusive <substring>]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, inclusive: { type: 'string', multiple: true } } });
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const top = Number(values.top);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const totalUs = profile.endTime - profile.startTime;

const short = (url) => {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const dist = u.indexOf('/dist/');
  if (dist >= 0) return u.slice(dist + 1);
  return u;
};
const group = (url) => {
  if (!url) return '(native/vm)';
  if (url.startsWith('node:')) return 'node: internals';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return `pkg ${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const dist = u.indexOf('/dist/');
  if (dist >= 0) return `vbe ${path.dirname(u.slice(dist + 6))}`;
  return u;
};

const fnSelf = new Map();
const groupSelf = new Map();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anonymous)'}  ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fnSelf.set(key, (fnSelf.get(key) ?? 0) + us);
  const g = cf.url ? group(cf.url) : cf.functionName.startsWith('(') ? cf.functionName : '(native/vm)';
  groupSelf.set(g, (groupSelf.get(g) ?? 0) + us);
}
const pct = (us) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`;
const ms = (us) => `${(us / 1000).toFixed(0).padStart(6)} ms`;

console.log(`profile ${positionals[0]}: ${(totalUs / 1000).toFixed(0)} ms wall, ${profile.samples.length} samples`);
console.log(`\ntop ${top} functions by self time`);
for (const [k, us] of [...fnSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)} ${ms(us)}  ${k}`);
console.log('\nself time by package / vbe directory');
for (const [k, us] of [...groupSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)} ${ms(us)}  ${k}`);

// Inclusive time of frames whose function or url contains a substring (e.g. "collectOutputs").
for (const needle of values.inclusive ?? []) {
  let us = 0;
  for (const [id, self] of selfUs) {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      if (cf.functionName.includes(needle) || cf.url.includes(needle)) {
        us += self;
        break;
      }
    }
  }
  console.log(`\ninclusive "${needle}": ${ms(us)} (${pct(us).trim()})`);
}
