import { describe, expect, it } from 'vitest';
import { parsePluginList } from '../../src/deploy/doctor.js';

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
