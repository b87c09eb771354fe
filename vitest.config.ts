import { defineConfig } from 'vitest/config';

// Unit tests run in parallel; integration tests share one lab node (real sshd, containerd, dlv), so they
// run one file at a time. Slow suites are named *.slow.test.ts and run in `make test` too.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/globalSetup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
