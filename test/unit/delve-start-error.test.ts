/** A dlv that did not start is reported by what dlv itself said, not by the connection it reset. */
import { describe, expect, it } from 'vitest';
import { dlvStartError } from '../../src/delve/nodeDebugger.js';

const noDebugInfo =
  "could not attach to pid 4242: could not open debug info - debuggee must not be built with 'go run' or -ldflags='-s -w', which strip debug info";

describe("dlv's failure to start", () => {
  it('no debug info: "not a debug build" (exit 6) with the setup to run, never the same-user check', () => {
    const error = dlvStartError(
      4242,
      {
        message: `dlv exited (exit status 1): ${noDebugInfo}`,
        dlvOutput: ['API server listening at: 127.0.0.1:41525', noDebugInfo],
        dlvExit: 'exit status 1',
      },
      '',
      'lab',
    );
    expect(error.exitCode).toBe(6);
    expect(error.message).toContain('containerd (pid 4242) has no debug information');
    expect(error.message).toContain('could not open debug info');
    expect(error.hint).toContain('ctrdbg setup lab');
    expect(`${error.message} ${error.hint}`).not.toMatch(/same.user|connection reset/i);
  });

  it("an older agent's bare message still reads the cause from dlv's output", () => {
    const error = dlvStartError(
      7,
      { message: 'cannot talk to dlv: read: connection reset by peer', dlvOutput: [noDebugInfo] },
      '',
    );
    expect(error.exitCode).toBe(6);
  });

  it('another failure stays a Delve error (exit 12), with the hint that fits', () => {
    const error = dlvStartError(
      7,
      {
        message: 'dlv exited (exit status 1): could not attach to pid 7: operation not permitted',
        dlvOutput: ['could not attach to pid 7: operation not permitted'],
      },
      '',
    );
    expect(error.exitCode).toBe(12);
    expect(error.hint).toContain('ptrace was refused');
  });
});
