import { describe, expect, it } from 'vitest';
import { chooseTool, isExplicit, type ToolCandidates } from '../../src/debugbuild/toolchain.js';

const all: ToolCandidates = {
  flag: '/flag/go',
  env: '/env/go',
  config: '/config/go',
  lane: { name: 'trixie', path: '/lane/go' },
  onPath: '/usr/bin/go',
};

describe('toolchain choice', () => {
  it('takes an explicit choice first: flag, then environment, then config', () => {
    expect(chooseTool('go', all)).toMatchObject({ path: '/flag/go', source: 'flag', why: '--go' });
    expect(chooseTool('go', { ...all, flag: undefined })).toMatchObject({
      path: '/env/go',
      source: 'env',
      why: '$CTRDBG_GO',
    });
    expect(chooseTool('dlv', { ...all, flag: undefined, env: undefined })).toMatchObject({
      path: '/config/go',
      source: 'config',
    });
  });

  it("then the lab's own lane, then PATH", () => {
    const noExplicit = { ...all, flag: undefined, env: undefined, config: undefined };
    expect(chooseTool('go', noExplicit)).toMatchObject({
      path: '/lane/go',
      source: 'lane',
      lane: 'trixie',
      why: "the trixie lane, the lab's own",
    });
    expect(chooseTool('dlv', { onPath: '/usr/bin/dlv' })).toMatchObject({
      path: '/usr/bin/dlv',
      source: 'path',
      why: 'first on PATH',
    });
    expect(chooseTool('go', {})).toBeUndefined();
  });

  it('counts only flag, environment and config as the user’s own choice', () => {
    expect(isExplicit(chooseTool('go', all)!)).toBe(true);
    expect(isExplicit(chooseTool('go', { lane: all.lane, onPath: '/usr/bin/go' })!)).toBe(false);
    expect(isExplicit(chooseTool('go', { onPath: '/usr/bin/go' })!)).toBe(false);
  });
});
