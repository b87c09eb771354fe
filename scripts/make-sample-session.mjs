#!/usr/bin/env node
// Writes a realistic, deterministic session file: what `ctrdbg attach lab --set lab-create --set tasks-create
// --record …` records while `ctr` creates a namespace, three containers and their tasks on the lab's
// containerd 1.6.20. Used for the committed fixture (test/fixtures/sessions/sample.jsonl) and, with --hits N,
// for the replay benchmark. Writes through the compiled writer (dist/), so run `npx tsc -p tsconfig.json` first.
//
//   node scripts/make-sample-session.mjs [OUT]            # the 12-hit sample (default: the fixture path)
//   node scripts/make-sample-session.mjs OUT --hits 100000 [--compact]  # a large session, same kinds of hits
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = '/usr/share/gocode/src/github.com/containerd/containerd';
const GRPC = '/usr/share/gocode/src/google.golang.org/grpc';
const START_MS = Date.parse('2025-11-25T14:03:12.000Z');

// ---- value constructors (RecordedValue) --------------------------------------------------------------------
const str = (name, value, extra = {}) => ({
  name,
  type: 'string',
  kind: 'string',
  value,
  len: value.length,
  ...extra,
});
const bool = (name, value) => ({ name, type: 'bool', kind: 'bool', value: String(value) });
const u32 = (name, value) => ({ name, type: 'uint32', kind: 'uint32', value: String(value) });
const i64 = (name, value) => ({ name, type: 'int64', kind: 'int64', value: String(value) });
const struct = (name, type, children) => ({ name, type, kind: 'struct', children });
const ptr = (name, type, target) => ({
  name,
  type,
  kind: 'ptr',
  // A different request is a different allocation: the address follows the content, as on a node.
  value: '0xc000' + hex6(name + type + JSON.stringify(target)),
  children: [target],
});
const strMap = (name, entries) => ({
  name,
  type: 'map[string]string',
  kind: 'map',
  len: entries.length,
  children: entries.map(([k, v]) => str(JSON.stringify(k), v)),
});
const nilSlice = (name, type) => ({ name, type, kind: 'slice', len: 0, cap: 0, children: [] });

function hex6(text) {
  let h = 2166136261;
  for (const c of text) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h.toString(16).padStart(8, '0').slice(0, 6);
}

const ctxArg = () => ({
  name: 'ctx',
  type: 'context.Context',
  kind: 'interface',
  value: '*context.valueCtx',
  truncated: true,
  children: [
    {
      name: 'data',
      type: '*context.valueCtx',
      kind: 'ptr',
      value: '0xc0004b2e40',
      truncated: true,
      children: [
        { name: 'key', type: 'interface {}', kind: 'interface', value: 'namespaces.namespaceKey {}' },
      ],
    },
  ],
});

/**
 * The method's receiver, as Delve lists it first among the arguments: the service object, with a database
 * pointer it did not follow and an event publisher whose channels are what the recorder writes for a chan.
 */
const receiver = (name, type) => ({
  name,
  type: `*github.com/containerd/containerd/${type}`,
  kind: 'ptr',
  value: '0xc000012378',
  children: [
    struct(`*${name}`, `github.com/containerd/containerd/${type}`, [
      {
        name: 'db',
        type: '*github.com/containerd/containerd/metadata.DB',
        kind: 'ptr',
        value: '0xc0000e4a80',
        truncated: true,
      },
      {
        name: 'publisher',
        type: 'github.com/containerd/containerd/events.Publisher',
        kind: 'interface',
        value: '*github.com/containerd/containerd/events/exchange.Exchange',
        children: [
          {
            name: 'data',
            type: '*github.com/containerd/containerd/events/exchange.Exchange',
            kind: 'ptr',
            value: '0xc000014070',
            children: [
              struct('*data', 'github.com/containerd/containerd/events/exchange.Exchange', [
                {
                  name: 'events',
                  type: 'chan github.com/docker/go-events.Event',
                  kind: 'chan',
                  value: '0xc0000ac5a0',
                  len: 0,
                  cap: 0,
                },
                {
                  name: 'queue',
                  type: 'chan github.com/docker/go-events.Event',
                  kind: 'chan',
                  value: '0xc0000ac600',
                  len: 2,
                  cap: 64,
                },
                { name: 'closed', type: 'chan struct {}', kind: 'chan', value: 'nil' },
              ]),
            ],
          },
        ],
      },
    ]),
  ],
});

// ---- breakpoints --------------------------------------------------------------------------------------------
const breakpoints = [
  {
    id: 1,
    name: 'lab-create/namespace-create',
    set: 'lab-create',
    entry: 'namespace-create',
    function: 'github.com/containerd/containerd/services/namespaces.(*local).Create',
    file: `${SRC}/services/namespaces/local.go`,
    line: 119,
    optimized: false,
    expressions: ['req.Namespace.Name', 'req.Namespace.Labels'],
  },
  {
    id: 2,
    name: 'lab-create/create-container',
    set: 'lab-create',
    entry: 'create-container',
    function: 'github.com/containerd/containerd/services/containers.(*local).Create',
    file: `${SRC}/services/containers/local.go`,
    line: 117,
    optimized: false,
    expressions: [
      'req.Container.ID',
      'req.Container.Image',
      'req.Container.Labels',
      'string(req.Container.Spec.Value)',
    ],
  },
  {
    id: 3,
    name: 'lab-create/create-task',
    set: 'lab-create',
    entry: 'create-task',
    function: 'github.com/containerd/containerd/services/tasks.(*local).Create',
    file: `${SRC}/services/tasks/local.go`,
    line: 157,
    optimized: false,
    expressions: ['r.ContainerID', 'r.Stdout', 'r.Terminal'],
  },
  {
    id: 4,
    name: 'tasks-create/shim-create',
    set: 'tasks-create',
    entry: 'shim-create',
    function: 'github.com/containerd/containerd/runtime/v2.(*TaskManager).Create',
    file: `${SRC}/runtime/v2/manager.go`,
    line: 370,
    optimized: false,
    expressions: ['taskID', 'opts.Runtime', 'opts.IO.Stdout'],
    condition: 'taskID != ""',
  },
];

const header = {
  type: 'header',
  format: 'ctrdbg-session',
  version: 1,
  createdAt: new Date(START_MS).toISOString(),
  ctrdbgVersion: '0.1.0',
  target: { spec: 'lab', kind: 'lab', host: '127.0.0.1', port: 2222, user: 'ctrdbg' },
  containerd: {
    pid: 48213,
    binary: '/var/lib/ctrdbg/labs/default/node/usr/bin/containerd',
    version: '1.6.20~ds1',
    revision: '1.6.20~ds1-1+b1',
    sha256: '6f0c1d4e2b9a8f7e5d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d',
    buildId: '3c9a41d2f6b0e8a7c5d3b1f9e7a5c3b1d9f7e5a3',
    goVersion: 'go1.19.8',
  },
  buildManifest: { gcflags: 'all=-N -l', source: SRC, builtAt: '2025-11-25T13:58:40.000Z' },
  delve: { version: '1.20.1', apiVersion: 2 },
  sets: ['lab-create', 'tasks-create'],
  breakpoints,
  redaction: { enabled: true, rules: ['*.Auth', '*Token*', '*Secret*', '*Password*', 'labels:*token*'] },
  trigger: 'ctr namespaces create lab-demo && ctr -n lab-demo run -d docker.io/library/busybox:latest c1 …',
};

// ---- stacks ---------------------------------------------------------------------------------------------------
const grpcTail = (service, method, handlerLine) => [
  {
    function: `github.com/containerd/containerd/api/services/${service}/v1._${method}_Handler.func1`,
    file: `${SRC}/api/services/${service}/v1/${service === 'namespaces' ? 'namespace' : service}.pb.go`,
    line: handlerLine,
  },
  {
    function: 'github.com/containerd/containerd/services/server.unaryNamespaceInterceptor',
    file: `${SRC}/services/server/namespace.go`,
    line: 31,
  },
  { function: 'google.golang.org/grpc.(*Server).processUnaryRPC', file: `${GRPC}/server.go`, line: 1282 },
  { function: 'google.golang.org/grpc.(*Server).handleStream', file: `${GRPC}/server.go`, line: 1619 },
  { function: 'google.golang.org/grpc.(*Server).serveStreams.func1.2', file: `${GRPC}/server.go`, line: 921 },
  { function: 'runtime.goexit', file: '/usr/lib/go-1.19/src/runtime/asm_amd64.s', line: 1594 },
];

function stackFor(bpId) {
  const bp = breakpoints[bpId - 1];
  const top = { function: bp.function, file: bp.file, line: bp.line };
  switch (bpId) {
    case 1:
      return [
        top,
        {
          function: 'github.com/containerd/containerd/services/namespaces.(*service).Create',
          file: `${SRC}/services/namespaces/service.go`,
          line: 75,
        },
        ...grpcTail('namespaces', 'Namespaces_Create', 656),
      ];
    case 2:
      return [
        top,
        {
          function: 'github.com/containerd/containerd/services/containers.(*service).Create',
          file: `${SRC}/services/containers/service.go`,
          line: 100,
        },
        ...grpcTail('containers', 'Containers_Create', 863),
      ];
    case 3:
      return [
        top,
        {
          function: 'github.com/containerd/containerd/services/tasks.(*service).Create',
          file: `${SRC}/services/tasks/service.go`,
          line: 69,
        },
        ...grpcTail('tasks', 'Tasks_Create', 1558),
      ];
    default:
      return [
        top,
        {
          function: 'github.com/containerd/containerd/services/tasks.(*local).Create',
          file: `${SRC}/services/tasks/local.go`,
          line: 217,
        },
        {
          function: 'github.com/containerd/containerd/services/tasks.(*service).Create',
          file: `${SRC}/services/tasks/service.go`,
          line: 69,
        },
        ...grpcTail('tasks', 'Tasks_Create', 1558),
      ];
  }
}

// ---- hit bodies ------------------------------------------------------------------------------------------------
const SPEC_JSON =
  '{"ociVersion":"1.0.2-dev","process":{"user":{"uid":0,"gid":0},"args":["sh","-c","echo hi"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"cwd":"/"}}';
const SPEC_LEN = 2890;

function namespaceHit(name, labels) {
  // ctr creates a namespace without labels with a nil map.
  const labelMap = labels.length
    ? strMap('Labels', labels)
    : { name: 'Labels', type: 'map[string]string', kind: 'map', len: 0, value: 'nil' };
  const req = ptr(
    'req',
    '*github.com/containerd/containerd/api/services/namespaces/v1.CreateNamespaceRequest',
    struct('', 'github.com/containerd/containerd/api/services/namespaces/v1.CreateNamespaceRequest', [
      struct('Namespace', 'github.com/containerd/containerd/api/services/namespaces/v1.Namespace', [
        str('Name', name),
        labelMap,
      ]),
    ]),
  );
  return {
    args: [
      receiver('l', 'services/namespaces.local'),
      ctxArg(),
      req,
      nilSlice('_', '[]google.golang.org/grpc.CallOption'),
    ],
    locals: [
      struct('resp', 'github.com/containerd/containerd/api/services/namespaces/v1.CreateNamespaceResponse', [
        struct('Namespace', 'github.com/containerd/containerd/api/services/namespaces/v1.Namespace', [
          str('Name', ''),
          { name: 'Labels', type: 'map[string]string', kind: 'map', len: 0, value: 'nil' },
        ]),
      ]),
    ],
    expressions: [
      { expr: 'req.Namespace.Name', value: str('req.Namespace.Name', name) },
      { expr: 'req.Namespace.Labels', value: { ...labelMap, name: 'req.Namespace.Labels' } },
    ],
  };
}

function containerHit({ id, image, labels, redactToken, unreadableCreated }) {
  const labelMap = strMap('Labels', labels);
  if (redactToken) {
    labelMap.children.push({
      name: '"io.ctrdbg/registry-token"',
      type: 'string',
      kind: 'string',
      redacted: true,
    });
    labelMap.len += 1;
  }
  const spec = str('string(req.Container.Spec.Value)', SPEC_JSON.slice(0, 96), {
    len: SPEC_LEN,
    truncated: true,
  });
  const container = struct(
    'Container',
    'github.com/containerd/containerd/api/services/containers/v1.Container',
    [
      str('ID', id),
      labelMap,
      str('Image', image),
      struct('Runtime', '*github.com/containerd/containerd/api/services/containers/v1.Container_Runtime', [
        str('Name', 'io.containerd.runc.v2'),
        { name: 'Options', type: '*github.com/gogo/protobuf/types.Any', kind: 'ptr', value: 'nil' },
      ]),
      struct('Spec', '*github.com/gogo/protobuf/types.Any', [
        str('TypeUrl', 'types.containerd.io/opencontainers/runtime-spec/1/Spec'),
        {
          name: 'Value',
          type: '[]uint8',
          kind: 'slice',
          len: SPEC_LEN,
          cap: 3072,
          truncated: true,
          children: [],
        },
      ]),
      str('Snapshotter', 'overlayfs'),
      str('SnapshotKey', id),
    ],
  );
  const locals = [
    struct('resp', 'github.com/containerd/containerd/api/services/containers/v1.CreateContainerResponse', [
      struct('Container', 'github.com/containerd/containerd/api/services/containers/v1.Container', [
        str('ID', ''),
      ]),
    ]),
  ];
  if (unreadableCreated) {
    locals.push({
      name: 'created',
      type: 'github.com/containerd/containerd/containers.Container',
      kind: 'struct',
      error: 'could not find loclist entry at 0x8f2c11 for address 0x14d1e3f',
    });
  }
  const labelsExpr = { ...labelMap, name: 'req.Container.Labels' };
  return {
    args: [
      receiver('l', 'services/containers.local'),
      ctxArg(),
      ptr(
        'req',
        '*github.com/containerd/containerd/api/services/containers/v1.CreateContainerRequest',
        struct('', 'github.com/containerd/containerd/api/services/containers/v1.CreateContainerRequest', [
          container,
        ]),
      ),
      nilSlice('_', '[]google.golang.org/grpc.CallOption'),
    ],
    locals,
    expressions: [
      { expr: 'req.Container.ID', value: str('req.Container.ID', id) },
      { expr: 'req.Container.Image', value: str('req.Container.Image', image) },
      { expr: 'req.Container.Labels', value: labelsExpr },
      { expr: 'string(req.Container.Spec.Value)', value: spec },
    ],
  };
}

function taskHit({ id, pid }) {
  const fifo = `/run/containerd/fifo/${pid}`;
  const r = struct('', 'github.com/containerd/containerd/api/services/tasks/v1.CreateTaskRequest', [
    str('ContainerID', id),
    {
      name: 'Rootfs',
      type: '[]*github.com/containerd/containerd/api/types.Mount',
      kind: 'slice',
      len: 1,
      cap: 1,
      children: [
        ptr(
          '[0]',
          '*github.com/containerd/containerd/api/types.Mount',
          struct('', 'github.com/containerd/containerd/api/types.Mount', [
            str('Type', 'overlay'),
            str('Source', 'overlay'),
            {
              name: 'Options',
              type: '[]string',
              kind: 'slice',
              len: 3,
              cap: 4,
              children: [
                str('[0]', 'index=off'),
                str(
                  '[1]',
                  `workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/${pid % 97}/work`,
                ),
                str(
                  '[2]',
                  `upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/${pid % 97}/fs`,
                ),
              ],
            },
          ]),
        ),
      ],
    },
    str('Stdin', ''),
    str('Stdout', `${fifo}/${id}-stdout`),
    str('Stderr', `${fifo}/${id}-stderr`),
    bool('Terminal', false),
    {
      name: 'Checkpoint',
      type: '*github.com/containerd/containerd/api/types.Descriptor',
      kind: 'ptr',
      value: 'nil',
    },
  ]);
  return {
    args: [
      receiver('l', 'services/tasks.local'),
      ctxArg(),
      ptr('r', '*github.com/containerd/containerd/api/services/tasks/v1.CreateTaskRequest', r),
      nilSlice('_', '[]google.golang.org/grpc.CallOption'),
    ],
    locals: [
      {
        name: 'container',
        type: '*github.com/containerd/containerd/containers.Container',
        kind: 'ptr',
        value: 'nil',
      },
      { name: 'err', type: 'error', kind: 'interface', value: 'nil' },
      str('checkpointPath', ''),
    ],
    expressions: [
      { expr: 'r.ContainerID', value: str('r.ContainerID', id) },
      { expr: 'r.Stdout', value: str('r.Stdout', `${fifo}/${id}-stdout`) },
      { expr: 'r.Terminal', value: bool('r.Terminal', false) },
    ],
  };
}

function shimHit({ id, pid }) {
  return {
    args: [
      receiver('m', 'runtime/v2.TaskManager'),
      ctxArg(),
      str('taskID', id),
      struct('opts', 'github.com/containerd/containerd/runtime.CreateOpts', [
        {
          name: 'Spec',
          type: '*github.com/gogo/protobuf/types.Any',
          kind: 'ptr',
          value: '0xc000a1c3c0',
          truncated: true,
        },
        struct('IO', 'github.com/containerd/containerd/runtime.IO', [
          str('Stdin', ''),
          str('Stdout', `/run/containerd/fifo/${pid}/${id}-stdout`),
          str('Stderr', `/run/containerd/fifo/${pid}/${id}-stderr`),
          bool('Terminal', false),
        ]),
        str('Runtime', 'io.containerd.runc.v2'),
        u32('TaskOptions', 0),
      ]),
    ],
    locals: [i64('shimTimeout', 5000000000)],
    expressions: [
      { expr: 'taskID', value: str('taskID', id) },
      { expr: 'opts.Runtime', value: str('opts.Runtime', 'io.containerd.runc.v2') },
      { expr: 'opts.IO.Stdout', error: 'could not find symbol value for opts' },
    ],
  };
}

/** The sample's scenario: [breakpoint id, goroutine, t (ms), thread, stoppedMs, body]. */
function sampleScenario() {
  return [
    [1, 41, 12.4, 48230, 3.1, namespaceHit('lab-demo', [['ctrdbg/owner', 'lab']])],
    [
      2,
      57,
      130.2,
      48231,
      4.6,
      containerHit({ id: 'c1', image: 'docker.io/library/busybox:latest', labels: [['app', 'demo']] }),
    ],
    [
      2,
      63,
      171.9,
      48233,
      5.2,
      containerHit({
        id: 'c2',
        image: 'docker.io/library/busybox:latest',
        labels: [
          ['app', 'demo-2'],
          ['tier', 'backend'],
        ],
        redactToken: true,
        unreadableCreated: true,
      }),
    ],
    [3, 57, 260.5, 48231, 4.0, taskHit({ id: 'c1', pid: 51034 })],
    [4, 57, 262.8, 48231, 3.7, shimHit({ id: 'c1', pid: 51034 })],
    [3, 63, 301.0, 48233, 4.3, taskHit({ id: 'c2', pid: 51102 })],
    [4, 63, 303.6, 48233, 3.9, shimHit({ id: 'c2', pid: 51102 })],
    [1, 88, 540.7, 48236, 2.8, namespaceHit('lab-demo-2', [])],
    [
      2,
      41,
      602.3,
      48230,
      4.9,
      containerHit({ id: 'c3', image: 'docker.io/library/alpine:3.20', labels: [['app', 'demo']] }),
    ],
    [3, 41, 688.0, 48230, 4.1, taskHit({ id: 'c3', pid: 51187 })],
    [4, 41, 690.4, 48230, 3.5, shimHit({ id: 'c3', pid: 51187 })],
    [3, 88, 742.9, 48236, 4.4, taskHit({ id: 'c1', pid: 51203 })],
  ];
}

function makeHit(seq, [bpId, goroutine, t, thread, stoppedMs, body]) {
  const bp = breakpoints[bpId - 1];
  return {
    type: 'hit',
    seq,
    t,
    wall: new Date(START_MS + Math.round(t)).toISOString(),
    breakpoint: { id: bp.id, name: bp.name, set: bp.set },
    goroutine: { id: goroutine, function: 'google.golang.org/grpc.(*Server).serveStreams.func1.2' },
    thread,
    stoppedMs,
    location: { function: bp.function, file: bp.file, line: bp.line },
    stack: stackFor(bpId),
    ...body,
  };
}

function endRecord(hits, t) {
  const perBreakpoint = {};
  for (const h of hits) perBreakpoint[h.breakpoint.name] = (perBreakpoint[h.breakpoint.name] ?? 0) + 1;
  return {
    type: 'end',
    t,
    wall: new Date(START_MS + Math.round(t)).toISOString(),
    reason: 'trigger-finished',
    message: 'trigger exited 0',
    hits: hits.length,
    perBreakpoint,
    dropped: 0,
    detached: true,
    containerdPid: header.containerd.pid,
    containerdServing: true,
  };
}

/** The 12 hits of the sample, as objects. */
export function sampleRecords() {
  const hits = sampleScenario().map((s, i) => makeHit(i + 1, s));
  return { header, hits, end: endRecord(hits, 812.5) };
}

/** Cuts a value tree to `depth` levels and 4 children a level, marking what was left out (as Delve's load limits do). */
function prune(value, depth) {
  if (!value.children) return value;
  if (depth === 0) return { ...value, children: undefined, truncated: true };
  const kept = value.children.slice(0, 4).map((c) => prune(c, depth - 1));
  return { ...value, children: kept, ...(kept.length < value.children.length ? { truncated: true } : {}) };
}

async function loadWriter() {
  const dist = join(root, 'dist', 'recording', 'writer.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run npx tsc -p tsconfig.json first`);
  return import(pathToFileURL(dist).href);
}

/** Writes the sample (or `hits` hits cycling through its scenario, on many goroutines) to `out`. */
export async function writeSession(out, { hits: count, compact = false } = {}) {
  const { createRecordingWriter } = await loadWriter();
  const writer = createRecordingWriter(out, {
    force: true,
    fsyncEveryRecords: 20000,
    fsyncIntervalMs: 60_000,
  });
  writer.writeHeader(header);
  if (count === undefined) {
    const { hits, end } = sampleRecords();
    for (const h of hits) writer.writeHit(h);
    writer.writeEnd(end);
  } else {
    const scenario = sampleScenario();
    const perBreakpoint = {};
    let t = 0;
    for (let seq = 1; seq <= count; seq++) {
      const [bpId, goroutine, dt, thread, stoppedMs, body] = scenario[(seq - 1) % scenario.length];
      t += 0.5 + (dt % 7);
      const hit = makeHit(seq, [
        bpId,
        goroutine + 100 * Math.floor((seq - 1) / 120),
        Math.round(t * 10) / 10,
        thread,
        stoppedMs,
        body,
      ]);
      if (compact) {
        // ~1.5 KB a hit, the size the benchmark's goal is stated for: the top of the stack and the request.
        hit.stack = hit.stack.slice(0, 2);
        hit.args = hit.args
          .filter((a) => a.name !== 'ctx' && a.name !== '_' && a.name !== 'l' && a.name !== 'm')
          .map((a) => prune(a, 3));
        hit.locals = [];
        hit.expressions = hit.expressions.map((e) => (e.value ? { ...e, value: prune(e.value, 1) } : e));
      }
      perBreakpoint[hit.breakpoint.name] = (perBreakpoint[hit.breakpoint.name] ?? 0) + 1;
      writer.writeHit(hit);
    }
    writer.writeEnd({
      ...endRecord([], t + 50),
      hits: count,
      perBreakpoint,
      reason: 'max-hits',
      message: undefined,
    });
  }
  writer.close();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const hitsAt = args.indexOf('--hits');
  const hits = hitsAt >= 0 ? Number(args[hitsAt + 1]) : undefined;
  const positional = args.filter((a, i) => !a.startsWith('--') && (hitsAt < 0 || i !== hitsAt + 1));
  const out = resolve(positional[0] ?? join(root, 'test', 'fixtures', 'sessions', 'sample.jsonl'));
  const { rmSync } = await import('node:fs');
  rmSync(out, { force: true });
  await writeSession(out, { hits, compact: args.includes('--compact') });
  process.stderr.write(`wrote ${out}\n`);
}
