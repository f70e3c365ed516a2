import { randomInt } from 'node:crypto';

/** A Vertex-style numeric job id (19 digits). */
export function newJobId(): string {
  let id = String(randomInt(1, 10));
  while (id.length < 19) id += String(randomInt(0, 10));
  return id;
}
