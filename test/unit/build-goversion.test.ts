import { describe, expect, it } from 'vitest';
import {
  checkGoRequirement,
  compareGoVersions,
  type GoVersion,
  parseGoMod,
  parseGoVersion,
} from '../../src/debugbuild/goVersion.js';

const v = (text: string) => parseGoVersion(text) as GoVersion;

describe('Go versions', () => {
  it('reads the forms go prints and go.mod holds', () => {
    expect(v('go1.24.4')).toMatchObject({ major: 1, minor: 24, patch: 4, text: '1.24.4' });
    expect(v('1.21')).toMatchObject({ minor: 21, patch: undefined, pre: undefined });
    expect(v('go1.21rc2')).toMatchObject({ minor: 21, patch: undefined, pre: { kind: 'rc', n: 2 } });
    expect(v('go version go1.19.8 linux/amd64')).toMatchObject({ minor: 19, patch: 8 });
    expect(v('devel go1.25-abcdef Tue')).toMatchObject({ minor: 25 });
    expect(parseGoVersion('not a version')).toBeUndefined();
  });

  it('orders them as Go does: 1.21 < 1.21rc1 < 1.21.0 < 1.21.1 < 1.22', () => {
    const order = [
      '1.20.14',
      '1.21',
      '1.21beta1',
      '1.21rc1',
      '1.21rc2',
      '1.21.0',
      '1.21.1',
      '1.22',
      '1.24.3',
    ];
    for (let i = 0; i < order.length - 1; i++) {
      expect(compareGoVersions(v(order[i]!), v(order[i + 1]!)), `${order[i]} < ${order[i + 1]}`).toBeLessThan(
        0,
      );
      expect(compareGoVersions(v(order[i + 1]!), v(order[i]!))).toBeGreaterThan(0);
    }
    expect(compareGoVersions(v('go1.24.4'), v('1.24.4'))).toBe(0);
  });
});

describe('go.mod requirements', () => {
  it('reads the go and toolchain directives, ignoring comments and other lines', () => {
    const mod = [
      '// go 1.99 in a comment does not count',
      'module github.com/containerd/containerd/v2',
      '',
      'go 1.24.3 // the minimum',
      '',
      'toolchain go1.24.9',
      'require (',
      '\tgithub.com/x/go v1.0.0',
      ')',
    ].join('\n');
    expect(parseGoMod(mod)).toEqual({ go: '1.24.3', toolchain: 'go1.24.9' });
    expect(parseGoMod('module x\n')).toEqual({ go: undefined, toolchain: undefined });
  });

  it('refuses an older Go with what is needed and what was found', () => {
    const check = checkGoRequirement({ go: '1.24.3', toolchain: 'go1.24.9' }, 'go1.19.8');
    expect(check).toEqual({
      needed: '1.24.3',
      suggested: '1.24.9',
      found: 'go1.19.8',
      ok: false,
      belowSuggested: false,
    });
  });

  it('accepts a newer Go, and only warns below the suggested toolchain', () => {
    expect(checkGoRequirement({ go: '1.24.3', toolchain: 'go1.24.9' }, 'go1.24.4')).toMatchObject({
      ok: true,
      belowSuggested: true,
    });
    expect(checkGoRequirement({ go: '1.21', toolchain: undefined }, 'go1.24.4')).toMatchObject({
      ok: true,
      belowSuggested: false,
      suggested: undefined,
    });
    // containerd v1.7.13's `go 1.19` is met by Go 1.19.8; a language version is met by its first release.
    expect(checkGoRequirement({ go: '1.19', toolchain: undefined }, 'go1.19.8').ok).toBe(true);
    expect(checkGoRequirement({ go: '1.21', toolchain: undefined }, 'go1.21.0').ok).toBe(true);
    expect(checkGoRequirement({ go: '1.21.0', toolchain: undefined }, 'go1.21rc2').ok).toBe(false);
  });

  it('treats a missing requirement or an unreadable local version as no obstacle', () => {
    expect(checkGoRequirement({ go: undefined, toolchain: undefined }, 'go1.19.8').ok).toBe(true);
    expect(checkGoRequirement({ go: '1.24', toolchain: undefined }, '').ok).toBe(true);
    expect(checkGoRequirement({ go: '1.24', toolchain: 'default' }, 'go1.24.0').suggested).toBeUndefined();
  });
});
