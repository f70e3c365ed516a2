import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/vitest/*.test.ts'],
    // The examples' Dockerfiles default to python:3.11-slim; tests build them on the offline base.
    env: { VBE_BASE_IMAGE: 'vbe-local/python-base:bookworm' },
    // Engine tests start real containers; two workers match the two cores CI has.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 600_000,
    globalSetup: ['test/helpers/globalSetup.ts'],
    reporters: ['default'],
  },
});
