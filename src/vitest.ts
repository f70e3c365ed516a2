/**
 * `import 'vertex-batch-emulator/vitest'` in a Vitest setup file (or a test) registers the job
 * matchers: expect(job).toSucceed(), .toFailWith(codeOrDiagnosis), .toHavePredictions(n),
 * .toHaveFailedInstances(n, messagePart?).
 */
import { expect } from 'vitest';
import { vbeMatchers, type VbeMatchers } from './testing/vitestMatchers.js';

expect.extend(vbeMatchers);

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface Assertion<T = any> extends VbeMatchers<T> {}
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface AsymmetricMatchersContaining extends VbeMatchers {}
}

export { vbeMatchers };
