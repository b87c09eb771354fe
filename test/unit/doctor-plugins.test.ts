import { describe, expect, it } from 'vitest';
import { parsePluginList, versionCheck } from '../../src/deploy/doctor.js';

describe('ctr plugins ls', () => {
  it('reads TYPE, ID and STATUS, whatever the PLATFORMS column holds', () => {
    const out = [
      'TYPE                                   ID                       PLATFORMS      STATUS    ',
      'io.containerd.event.v1                 exchange                 -              ok        ',
      'io.containerd.snapshotter.v1           btrfs                    linux/amd64    skip      ',
      'io.containerd.grpc.v1                  cri                      linux/amd64    ok        ',
      '',
    ].join('\n');
    expect(parsePluginList(out)).toEqual([
      { type: 'io.containerd.event.v1', id: 'exchange', status: 'ok' },
      { type: 'io.containerd.snapshotter.v1', id: 'btrfs', status: 'skip' },
      { type: 'io.containerd.grpc.v1', id: 'cri', status: 'ok' },
    ]);
    expect(parsePluginList('TYPE ID PLATFORMS STATUS\n')).toEqual([]);
  });
});

describe('doctor: version matches the source', () => {
  it('a node without a version number is said as such, never "Check out vundefined"', () => {
    for (const node of ['', 'containerd github.com/containerd/containerd unknown']) {
      const check = versionCheck(node, '1.6.20~ds1', 'lab');
      expect(check.status).toBe('fail');
      expect(JSON.stringify(check)).not.toMatch(/undefined|Check out v/);
      expect(check.hint).toContain("The node's containerd reports no version number");
      expect(check.hint).toContain('ctrdbg doctor lab');
    }
  });

  it('a source without one is the source that is named', () => {
    const check = versionCheck('containerd x 1.6.20~ds1 rev', 'main', 'lab');
    expect(check.status).toBe('fail');
    expect(check.hint).toContain('The source reports no version number');
    expect(check.hint).toContain('v1.6.20');
    expect(JSON.stringify(check)).not.toContain('undefined');
  });

  it('equal versions pass; different ones name the tag to check out; no source is a warning', () => {
    expect(versionCheck('containerd x 1.6.20~ds1 rev', 'v1.6.20', 'lab').status).toBe('ok');
    expect(versionCheck('containerd x 1.7.24 rev', '1.6.20', 'lab').hint).toBe(
      'Check out v1.7.24 in the source tree and run ctrdbg setup again.',
    );
    expect(versionCheck('', undefined, 'lab')).toMatchObject({
      status: 'warn',
      detail: 'node reports no version; no source to compare with',
    });
  });
});
