/** `setup --binary`: a Go program that is not containerd is named as such, not as a version to check out. */
import { describe, expect, it } from 'vitest';
import { refuseNotContainerd } from '../../src/deploy/setupNode.js';
import { isCtrdbgError } from '../../src/errors.js';

function refusal(main: string | null, line: string | undefined) {
  try {
    refuseNotContainerd('/tmp/hello', main, line);
  } catch (error) {
    if (isCtrdbgError(error)) return error;
    throw error;
  }
  return undefined;
}

describe('a --binary that is not containerd', () => {
  it('is refused with what it is, and no git checkout advice', () => {
    const error = refusal('example.test/hello', 'hello from not-containerd');
    expect(error?.exitCode).toBe(3);
    expect(error?.message).toBe(
      '/tmp/hello is not containerd: it is a Go program whose main package is example.test/hello, and `--version` printed "hello from not-containerd" where containerd prints "containerd <package> <version>".',
    );
    expect(`${error?.message} ${error?.hint}`).not.toMatch(/checkout|v1\.6/);
    expect(error?.hint).toContain('leave out --binary');
    expect(refusal('github.com/go-delve/delve', '')?.message).toContain('`--version` printed nothing');
    expect(refusal('github.com/go-delve/delve', undefined)?.message).toContain('`--version` failed');
  });

  it("containerd's version line, or a build that cannot run here but is containerd by its build info, passes", () => {
    expect(refusal(null, 'containerd github.com/containerd/containerd 1.6.20~ds1 x')).toBeUndefined();
    expect(refusal('ctrdbg.lab/containerd', undefined)).toBeUndefined();
    expect(refusal(null, undefined)).toBeUndefined();
  });
});
