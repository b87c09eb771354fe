/**
 * Which shim containerd runs, the pure parts: CRI's default runtime out of containerd's config (1.x version 2,
 * 2.x version 3, version 1, dotted keys, comments), the by-name lookup order, and how running shims are told.
 */
import { describe, expect, it } from 'vitest';
import {
  criDefaultRuntime,
  describeRunningShims,
  shimCandidates,
  tomlStrings,
} from '../../src/deploy/shimLocate.js';
import { criConfig } from '../../src/lab/criLab.js';
import { labPaths } from '../../src/nodes/labNodes.js';

describe('criDefaultRuntime', () => {
  it("the CRI lab's config: runc, runc v2, its own shim as runtime_path", () => {
    const paths = labPaths('cri');
    expect(criDefaultRuntime(criConfig(paths))).toEqual({
      name: 'runc',
      type: 'io.containerd.runc.v2',
      path: paths.node.shim,
      table: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc',
    });
  });

  it("minikube's 1.7 config (nested tables, no runtime_path): the shim is looked up by name", () => {
    const config = `version = 2
root = "/var/lib/containerd"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"   # the pause image
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = false
`;
    expect(criDefaultRuntime(config)).toEqual({
      name: 'runc',
      type: 'io.containerd.runc.v2',
      table: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc',
    });
  });

  it('2.x (version 3, single-quoted plugin id), another default runtime with a path of its own', () => {
    const config = `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'debug'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.debug]
  runtime_type = 'io.containerd.runc.v2'
  runtime_path = '/opt/debug/containerd-shim-runc-v2' # ctrdbg's
`;
    expect(criDefaultRuntime(config)).toMatchObject({
      name: 'debug',
      path: '/opt/debug/containerd-shim-runc-v2',
    });
  });

  it('dotted keys and version 1 (plugins.cri); a default runtime that is not runc v2 says so', () => {
    const config = `[plugins.cri]
containerd.default_runtime_name = "kata"
containerd.runtimes.kata.runtime_type = "io.containerd.kata.v2"
`;
    expect(criDefaultRuntime(config)).toEqual({
      name: 'kata',
      type: 'io.containerd.kata.v2',
      table: 'plugins."cri".containerd.runtimes.kata',
    });
  });

  it('no CRI section, or no config at all: undefined', () => {
    expect(criDefaultRuntime('version = 2\n[grpc]\n  address = "/run/x.sock"\n')).toBeUndefined();
    expect(criDefaultRuntime('')).toBeUndefined();
  });

  it('tomlStrings keeps # inside strings, unescapes basic strings and skips arrays of tables', () => {
    const values = tomlStrings(
      '[a."b.c"]\nx = "p#q" # comment\ny = "a\\"b"\n[[proxy_plugins]]\nz = "skipped?"\n[d]\nw = 3\n',
    );
    expect(values.get('a\0b.c\0x')).toBe('p#q');
    expect(values.get('a\0b.c\0y')).toBe('a"b');
    expect(values.get('d\0w')).toBeUndefined();
    expect([...values.keys()].some((k) => k.startsWith('proxy_plugins'))).toBe(false);
  });
});

describe('shimCandidates', () => {
  it("containerd's order: its working directory, its PATH (absolute entries), beside its binary", () => {
    expect(
      shimCandidates({
        cwd: '/',
        pathEnv: '/lab/node/usr/bin::relative/bin:/usr/bin',
        containerdBinary: '/lab/node/usr/bin/containerd',
      }),
    ).toEqual([
      { path: '/containerd-shim-runc-v2', why: "in containerd's working directory" },
      {
        path: '/lab/node/usr/bin/containerd-shim-runc-v2',
        why: "first on containerd's PATH (/lab/node/usr/bin)",
      },
      { path: '/usr/bin/containerd-shim-runc-v2', why: "first on containerd's PATH (/usr/bin)" },
      { path: '/lab/node/usr/bin/containerd-shim-runc-v2', why: "beside containerd's binary" },
    ]);
  });

  it('without a PATH (a bare environment) only the working directory and the binary’s directory count', () => {
    expect(shimCandidates({ containerdBinary: '/usr/bin/containerd' })).toEqual([
      { path: '/usr/bin/containerd-shim-runc-v2', why: "beside containerd's binary" },
    ]);
  });
});

describe('describeRunningShims', () => {
  it('says how many run the file and how many keep a binary it replaced', () => {
    expect(describeRunningShims([])).toBe('no shim running');
    expect(describeRunningShims([{ pid: 1, replaced: false }])).toBe('1 running shim: 1 on this file');
    expect(
      describeRunningShims([
        { pid: 1, replaced: false },
        { pid: 2, replaced: true },
        { pid: 3, replaced: true },
      ]),
    ).toBe(
      '3 running shims: 1 on this file, 2 on a binary replaced at this path since they started (kept until their pods end)',
    );
  });
});
