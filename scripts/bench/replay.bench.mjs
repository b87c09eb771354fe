#!/usr/bin/env node
// Replay benchmark: a 100k-hit session (~1.5 KB a hit) in a temp dir; times `ctrdbg replay FILE --goto 100000
// --json` (median of 5, wall clock and peak RSS) against `wc -l FILE` read in the same run as the floor.
// Progress goes to stderr; the last stdout line is the JSON result (see scripts/bench/run).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HITS = Number(process.env.BENCH_REPLAY_HITS ?? 100_000);
const RUNS = 5;
const mainJs = join(root, 'dist', 'main.js');
const log = (m) => process.stderr.write(`replay bench: ${m}\n`);

if (!existsSync(mainJs)) {
  log('dist/ missing, building');
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
}

const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-replay-bench-'));
const file = join(dir, 'bench.jsonl');
try {
  const { writeSession } = await import('../make-sample-session.mjs');
  const t0 = performance.now();
  await writeSession(file, { hits: HITS, compact: true });
  const size = statSync(file).size;
  log(
    `generated ${HITS} hits, ${(size / 1e6).toFixed(1)} MB (${Math.round(size / HITS)} B/hit) in ${Math.round(performance.now() - t0)} ms`,
  );
  // Warm the page cache so both commands read from memory, as a second look at a fresh recording would.
  readFileSync(file);

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const gotoRuns = [];
  const wcRuns = [];
  for (let i = 0; i < RUNS; i++) {
    wcRuns.push(await run('wc', ['-l', file]));
    gotoRuns.push(
      await run(process.execPath, [mainJs, 'replay', file, '--goto', String(HITS), '--json'], (out) => {
        const hit = JSON.parse(out).hit;
        if (hit.seq !== HITS) throw new Error(`--goto ${HITS} returned hit ${hit.seq}`);
      }),
    );
    log(
      `run ${i + 1}: goto ${gotoRuns[i].ms.toFixed(1)} ms / ${gotoRuns[i].rssMb.toFixed(1)} MB, wc -l ${wcRuns[i].ms.toFixed(1)} ms`,
    );
  }
  // Context rows: the worst case of the seek (the middle: half the file counted), the full index with
  // per-hit metadata (what summary/list/filter/DAP need), and node's own start-up.
  const middle = Math.floor(HITS / 2);
  const middleRuns = [];
  const summaryRuns = [];
  const nodeRuns = [];
  for (let i = 0; i < RUNS; i++) {
    middleRuns.push(
      await run(process.execPath, [mainJs, 'replay', file, '--goto', String(middle), '--json']),
    );
    summaryRuns.push(await run(process.execPath, [mainJs, 'replay', file, '--json']));
    nodeRuns.push(await run(process.execPath, ['-e', '0']));
  }
  log(
    `goto ${middle}: ${median(middleRuns.map((r) => r.ms)).toFixed(1)} ms; summary (full index): ${median(summaryRuns.map((r) => r.ms)).toFixed(1)} ms / ${median(summaryRuns.map((r) => r.rssMb)).toFixed(1)} MB; node -e 0: ${median(nodeRuns.map((r) => r.ms)).toFixed(1)} ms`,
  );

  const wall = Math.round(median(gotoRuns.map((r) => r.ms)));
  const wc = Math.round(median(wcRuns.map((r) => r.ms)));
  const rss = Math.round(median(gotoRuns.map((r) => r.rssMb)));
  const wcRss = Math.round(median(wcRuns.map((r) => r.rssMb)) * 10) / 10;
  const k = `${HITS / 1000}k`;
  const ratio = (v) => Math.round((v / Math.max(wc, 1)) * 100) / 100;
  const middleWall = Math.round(median(middleRuns.map((r) => r.ms)));
  const summaryWall = Math.round(median(summaryRuns.map((r) => r.ms)));
  const rows = [
    {
      case: `goto last of ${k}`,
      metric: 'wall',
      value: wall,
      unit: 'ms',
      anchor: { name: 'wc -l', value: wc },
      ratio: ratio(wall),
      goal: '<= 300 ms',
      met: wall <= 300,
    },
    {
      case: `goto last of ${k}`,
      metric: 'peak rss',
      value: rss,
      unit: 'MB',
      anchor: { name: 'wc -l', value: wcRss },
      goal: '<= 150 MB',
      met: rss <= 150,
    },
    {
      case: `goto middle of ${k}`,
      metric: 'wall',
      value: middleWall,
      unit: 'ms',
      anchor: { name: 'wc -l', value: wc },
      ratio: ratio(middleWall),
    },
    {
      case: `summary of ${k} (full index)`,
      metric: 'wall',
      value: summaryWall,
      unit: 'ms',
      anchor: { name: 'wc -l', value: wc },
      ratio: ratio(summaryWall),
    },
    {
      case: `summary of ${k} (full index)`,
      metric: 'peak rss',
      value: Math.round(median(summaryRuns.map((r) => r.rssMb))),
      unit: 'MB',
    },
    { case: 'node -e 0', metric: 'wall', value: Math.round(median(nodeRuns.map((r) => r.ms))), unit: 'ms' },
  ];
  process.stdout.write(`${JSON.stringify({ suite: 'replay', rows })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Runs a command, returns wall ms and peak RSS in MB. GNU time gives the peak exactly (%M); where it is
 * missing, /proc/PID/status's VmHWM is polled, which can miss the last milliseconds of growth.
 */
function run(cmd, args, check) {
  const gnuTime = existsSync('/usr/bin/time') && timeWorks();
  const argv = gnuTime ? ['/usr/bin/time', ['-f', '%M', cmd, ...args]] : [cmd, args];
  return new Promise((resolveRun, reject) => {
    const start = performance.now();
    const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let hwmKb = 0;
    const poll = gnuTime
      ? undefined
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
          } catch {}
        }, 2);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - start;
      if (poll) clearInterval(poll);
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`));
      if (gnuTime) hwmKb = Number(err.trim().split('\n').pop());
      try {
        check?.(out);
      } catch (error) {
        return reject(error);
      }
      resolveRun({ ms, rssMb: hwmKb / 1024 });
    });
  });
}

function timeWorks() {
  try {
    execFileSync('/usr/bin/time', ['-f', '%M', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
