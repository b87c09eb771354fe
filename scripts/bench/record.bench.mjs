// What a recording costs a live containerd, each figure against its anchor measured in the same run:
// - latency added to a recorded call (p50) vs `dlv trace -p` on the same function, beside the raw Delve floor;
// - the cost per hit of each capture option, so a set author can choose;
// - the sustained rate with 16 callers, none dropped;
// - flatness: hits/s of the last 10% of a long recording vs its first 10%, and ctrdbg's peak RSS;
// - the attach pause (seen by a probe calling containerd) vs `dlv attach` alone, with 10 breakpoints.
// Environment: BENCH_CALLS (300), BENCH_BURST (2000), BENCH_FLAT_HITS (100000), BENCH_SKIP (comma list of parts).
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { benchLab, ctrdbgJson, env, log, nsclient, percentile, repo, round } from './lib.mjs';

const { connectTcp } = await import(join(repo, 'dist/delve/rpcClient.js'));

const PKG = 'github.com/containerd/containerd/services';
const FUNCTION = `${PKG}/namespaces.(*local).Get`;
const FUNCTION_RE = '^github\\.com/containerd/containerd/services/namespaces\\.\\(\\*local\\)\\.Get$';
const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const BURST = Number(process.env.BENCH_BURST ?? 2000);
const FLAT_HITS = Number(process.env.BENCH_FLAT_HITS ?? 100_000);
const skip = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));

const lab = benchLab();
const client = nsclient();
const sock = lab.containerd.socket;
const pid = lab.containerd.pid;
const work = mkdtempSync(join(tmpdir(), 'ctrdbg-bench-record-'));

/** What a user needs on namespaces Get: the parameter `req` (depth 1) and one expression, no stack. */
const LEAN = ['    params: [req]', '    record: [req.Name]'];
const CAPTURES = [
  ['nothing (a bare stop)', []],
  ['req (depth 1)', ['    params: [req]']],
  ['req + 1 expression', LEAN],
  ['+ receiver and ctx (loadArgs depth 1)', [...LEAN, '    loadArgs: { depth: 1, maxString: 64, maxArray: 4 }']],
  ['+ 4 frames', [...LEAN, '    stack: 4']],
  ['+ goroutine', [...LEAN, '    goroutine: true']],
  [
    'full: receiver, 4 frames, goroutine',
    [...LEAN, '    loadArgs: { depth: 1, maxString: 64, maxArray: 4 }', '    stack: 4', '    goroutine: true'],
  ],
];

function writeSet(name, entries) {
  const lines = ['schema: ctrdbg.breakpoint-set/v1', `name: ${name}`, 'entries:'];
  for (const e of entries) lines.push(`  - name: ${e.name}`, `    candidates: ['${e.fn}']`, ...e.lines);
  writeFileSync(join(work, `${name}.yaml`), `${lines.join('\n')}\n`);
  return name;
}

const loadCommand = (out, { n = CALLS, c = 1 } = {}) => `${client} -address ${sock} -op get -n ${n} -c ${c} -out ${out}`;

function runLoad(out, opts) {
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', loadCommand(out, opts)], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(readFileSync(out, 'utf8'))) : reject(new Error(`load exited ${code}`))));
  });
}

const p50 = (load) => percentile(load.latenciesMs, 50);

/** ctrdbg attach recording a trigger load; returns attach's JSON and the load's result. */
function recordLoad(set, opts, record) {
  const out = join(work, `load-${set}-${opts.c ?? 1}.json`);
  const args = ['attach', 'lab', '--sets-dir', work, '--set', set, '--trigger', loadCommand(out, opts)];
  if (record) args.push('--record', record, '--force');
  const attach = ctrdbgJson(args);
  return { attach, load: JSON.parse(readFileSync(out, 'utf8')) };
}

/** A headless dlv attached to containerd, as a user would start it; resolves once it answers. */
async function startDlv() {
  const dlv = spawn('dlv', ['attach', String(pid), '--headless', '--listen', '127.0.0.1:0', '--api-version=2', '--accept-multiclient'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const address = await new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d;
      const m = /API server listening at: 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    dlv.stdout.on('data', onData);
    dlv.stderr.on('data', onData);
    dlv.on('exit', (code) => reject(new Error(`dlv exited ${code}: ${out}`)));
  });
  const rpc = await connectTcp('127.0.0.1', address, { timeoutMs: 60_000 });
  await rpc.getVersion({ timeoutMs: 60_000 });
  return { dlv, rpc };
}

async function stopDlv({ dlv, rpc }) {
  const exited = new Promise((r) => dlv.on('exit', r));
  for (const bp of await rpc.listBreakpoints()) if (bp.id > 0) await rpc.clearBreakpoint(bp.id);
  await rpc.detach(false);
  await exited;
  assertUntraced('a raw Delve loop');
}

function assertUntraced(what) {
  const tracer = /^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (tracer !== '0') throw new Error(`containerd still traced by ${tracer} after ${what}`);
}

/** The anchor for the loop: a client on the node's loopback that continues at once after every stop. */
async function rawLoop(breakpoint) {
  const d = await startDlv();
  const [loc] = await d.rpc.findLocation(FUNCTION);
  await d.rpc.createBreakpoint({ addr: loc.pc, ...breakpoint });
  const controller = new AbortController();
  let hits = 0;
  const looping = (async () => {
    while (!controller.signal.aborted) {
      const r = await d.rpc.continue({ signal: controller.signal });
      if (r.halted) break;
      hits += (r.state.Threads ?? []).filter((t) => t.breakPoint && t.breakPoint.id > 0).length;
    }
  })();
  const load = await runLoad(join(work, 'raw.json'));
  controller.abort();
  await looping;
  await stopDlv(d);
  if (hits < CALLS) throw new Error(`the raw loop saw ${hits} hits for ${CALLS} calls`);
  return load;
}

/** dlv trace -p on the same function, ended with SIGTERM (it ignores SIGINT, and SIGTERM detaches). */
async function withDlvTrace(fn) {
  const trace = spawn('dlv', ['trace', '-p', String(pid), FUNCTION_RE], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  trace.stdout.on('data', (d) => (out += d));
  trace.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!/namespaces\.\(\*local\)\.Get/.test(out)) {
    if (Date.now() > deadline) throw new Error(`dlv trace never reported a hit:\n${out}`);
    await runLoad(join(work, 'probe.json'), { n: 1 });
  }
  try {
    return await fn();
  } finally {
    trace.kill('SIGTERM');
    await new Promise((r) => trace.on('exit', r));
    assertUntraced('dlv trace');
  }
}

/** A probe calling containerd one call at a time while `during` runs; the longest call is the pause it saw. */
async function probed(during) {
  const out = join(work, 'probe-for.json');
  const ready = join(work, 'probe-ready');
  rmSync(ready, { force: true });
  const probe = spawn(client, ['-address', sock, '-for', '30s', '-ready', ready, '-out', out], { stdio: 'inherit' });
  const done = new Promise((r) => probe.on('exit', r));
  while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
  const value = await during();
  probe.kill('SIGINT');
  await done;
  return { value, probe: existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : undefined };
}

/** ctrdbg's peak RSS while it records, polled from /proc (VmHWM only grows). */
function recordWatched(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repo, 'dist/main.js'), ...args, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hwmKb = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
      } catch {}
    }, 200);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) return reject(new Error(`ctrdbg exited ${code}: ${stderr}`));
      resolve({ result: JSON.parse(stdout), rssMb: hwmKb / 1024 });
    });
  });
}

/** Hits/s over the first and the last 10% of a recording, from the hits' own times. */
async function ratesOf(file) {
  const times = [];
  const lines = createInterface({ input: createReadStream(file) });
  for await (const line of lines) {
    const m = /^\{"type":"hit","seq":\d+,"t":([0-9.]+)/.exec(line);
    if (m) times.push(Number(m[1]));
  }
  times.sort((a, b) => a - b);
  const tenth = Math.floor(times.length / 10);
  const rate = (from, to) => (to - from) / ((times[to] - times[from]) / 1000);
  return { hits: times.length, first: rate(0, tenth), last: rate(times.length - 1 - tenth, times.length - 1) };
}

const rows = [];
const row = (r) => {
  rows.push(r);
  log(`${r.case}: ${r.metric} ${r.value} ${r.unit}${r.ratio !== undefined ? ` (${round(r.ratio)}x)` : ''}`);
};
try {
  await runLoad(join(work, 'warm.json'), { n: 50 });
  const base = p50(await runLoad(join(work, 'base.json')));
  row({ case: 'call, no debugger', metric: 'p50', value: round(base, 3), unit: 'ms' });

  // Capture options, each through ctrdbg (one recording each, the loop on the node).
  const added = {};
  for (const [i, [name, lines]] of CAPTURES.entries()) {
    const set = writeSet(`capture${i}`, [{ name: 'get', fn: FUNCTION, lines }]);
    const { attach, load } = recordLoad(set, { n: CALLS });
    if (attach.hits !== CALLS) throw new Error(`${name}: recorded ${attach.hits} hits for ${CALLS} calls`);
    added[name] = p50(load) - base;
  }
  const bare = added[CAPTURES[0][0]];
  for (const [name] of CAPTURES) {
    row({ case: `capture: ${name}`, metric: 'added p50', value: round(added[name]), unit: 'ms' });
    if (name !== CAPTURES[0][0]) row({ case: `capture: ${name}`, metric: 'cost per hit', value: round(added[name] - bare), unit: 'ms' });
  }

  // The floor: a raw Delve loop on the node, minimal breakpoint; and the same loop with the lean capture.
  const floor = p50(await rawLoop({ goroutine: false, stacktrace: 0 })) - base;
  const rawLean = p50(await rawLoop({ goroutine: false, stacktrace: 0, variables: ['(req).Name', 'req'] })) - base;
  row({ case: 'raw Delve loop, minimal breakpoint (floor)', metric: 'added p50', value: round(floor), unit: 'ms' });
  row({ case: 'raw Delve loop, req + 1 expression', metric: 'added p50', value: round(rawLean), unit: 'ms' });

  // Sustained: 16 callers, the lean capture.
  const leanSet = writeSet('lean', [{ name: 'get', fn: FUNCTION, lines: LEAN }]);
  const burst = recordLoad(leanSet, { n: BURST, c: 16 });
  const perSecond = burst.attach.hits / (burst.load.durationMs / 1000);
  const dropped = BURST - burst.attach.hits + (burst.attach.dropped ?? 0);
  row({ case: `sustained, 16 callers, ${BURST} calls`, metric: 'hits/s', value: round(perSecond, 0), unit: 'hits/s', goal: '>= 250', met: perSecond >= 250 });
  row({ case: `sustained, 16 callers, ${BURST} calls`, metric: 'dropped', value: dropped, unit: 'hits', goal: '0', met: dropped === 0 });
  row({ case: `sustained, 16 callers, ${BURST} calls`, metric: 'hits per stop', value: round(burst.attach.hits / burst.attach.stops), unit: 'hits' });

  // Flatness over a long recording.
  if (!skip.has('flat')) {
    const file = join(work, 'flat.jsonl');
    const out = join(work, 'flat-load.json');
    const { result, rssMb } = await recordWatched(['attach', 'lab', '--sets-dir', work, '--set', leanSet, '--record', file, '--trigger', loadCommand(out, { n: FLAT_HITS, c: 16 })]);
    const rates = await ratesOf(file);
    if (rates.hits !== FLAT_HITS) throw new Error(`flatness: ${rates.hits} hits recorded for ${FLAT_HITS} calls`);
    const flatRatio = rates.last / rates.first;
    const c = `${FLAT_HITS} hits, 16 callers`;
    row({ case: c, metric: 'hits/s, first 10%', value: round(rates.first, 0), unit: 'hits/s' });
    row({ case: c, metric: 'hits/s, last 10%', value: round(rates.last, 0), unit: 'hits/s', anchor: { name: 'first 10%', value: round(rates.first, 0) }, ratio: flatRatio, goal: '>= 0.9x', met: flatRatio >= 0.9 });
    row({ case: c, metric: 'dropped', value: result.dropped, unit: 'hits', goal: '0', met: result.dropped === 0 });
    row({ case: c, metric: 're-arms', value: result.rearms, unit: '' });
    row({ case: c, metric: 'ctrdbg peak RSS', value: round(rssMb, 0), unit: 'MB', goal: '<= 200', met: rssMb <= 200 });
    rmSync(file, { force: true });
  }

  // The attach pause, seen by a probe: dlv attach alone (attach, continue at once), then ctrdbg with 10 breakpoints.
  const tenSet = writeSet(
    'ten',
    [
      'namespaces.(*local).Create', 'namespaces.(*local).Update', 'namespaces.(*local).Delete', 'namespaces.(*local).List',
      'containers.(*local).Get', 'containers.(*local).List', 'containers.(*local).Create', 'containers.(*local).Update',
      'containers.(*local).Delete', 'images.(*local).Get',
    ].map((f, i) => ({ name: `e${i + 1}`, fn: `${PKG}/${f}`, lines: LEAN.map((l) => l.replace('req.Name', 'req')) })),
  );
  const dlvAlone = [];
  const ours = [];
  const agent = [];
  for (let round_ = 0; round_ < 3; round_++) {
    const alone = await probed(async () => {
      const d = await startDlv();
      const controller = new AbortController();
      const running = d.rpc.continue({ signal: controller.signal });
      await runLoad(join(work, 'after-attach.json'), { n: 5 });
      controller.abort();
      await running;
      await stopDlv(d);
    });
    dlvAlone.push(alone.probe.maxMs);
    const withUs = await probed(async () => ctrdbgJson(['attach', 'lab', '--sets-dir', work, '--set', tenSet, '--duration', '1']));
    if (withUs.value.armed.length !== 10) throw new Error(`armed ${withUs.value.armed.length} of 10`);
    ours.push(withUs.probe.maxMs);
    agent.push(withUs.value.pause);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const extra = median(ours) - median(dlvAlone);
  row({ case: 'attach pause, dlv attach alone', metric: 'longest call', value: round(median(dlvAlone), 0), unit: 'ms' });
  row({
    case: 'attach pause, ctrdbg, 10 breakpoints',
    metric: 'longest call',
    value: round(median(ours), 0),
    unit: 'ms',
    anchor: { name: 'dlv attach alone', value: round(median(dlvAlone), 0) },
  });
  row({ case: 'attach pause, ctrdbg minus dlv attach', metric: 'added', value: round(extra, 0), unit: 'ms', goal: '<= 300', met: extra <= 300 });
  const a = agent[Math.floor(agent.length / 2)];
  row({ case: 'attach pause, as the agent measured it', metric: 'paused / dlv / resolve / create', value: `${round(a.pausedMs, 0)} / ${round(a.dlvAttachMs, 0)} / ${round(a.resolveMs, 0)} / ${round(a.createMs, 0)}`, unit: 'ms' });

  // dlv trace -p last: ended with SIGTERM it can leave int3 bytes in containerd's code, so the lab's containerd is
  // restarted afterwards.
  const traced = p50(await withDlvTrace(() => runLoad(join(work, 'trace.json')))) - base;
  execFileSync(join(lab.dir, 'node/usr/local/sbin/lab-service'), ['restart']);
  const lean = added['req + 1 expression'];
  row({ case: 'dlv trace -p (entry and return)', metric: 'added p50', value: round(traced), unit: 'ms' });
  row({
    case: 'added per recorded call, req + 1 expression',
    metric: 'added p50',
    value: round(lean),
    unit: 'ms',
    anchor: { name: 'dlv trace -p', value: round(traced) },
    ratio: lean / traced,
    goal: '<= 0.5x',
    met: lean <= 0.5 * traced,
  });
  row({ case: 'added per recorded call, req + 1 expression', metric: 'over the raw floor', value: round(lean - floor), unit: 'ms', anchor: { name: 'floor', value: round(floor) } });
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify({ suite: 'record', rows }));
