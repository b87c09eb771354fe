// Shared helpers for ctrdbg's benchmarks: a lab of their own (so tests and a developer's labs are untouched),
// the real CLI, timing and percentiles.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const env = {
  ...process.env,
  CTRDBG_LAB_ROOT: '/var/lib/ctrdbg/bench-labs',
  CTRDBG_CACHE_DIR: '/var/lib/ctrdbg/bench-cache',
  CTRDBG_CONFIG_DIR: '/var/lib/ctrdbg/bench-config',
  NO_COLOR: '1',
};

export const log = (m) => process.stderr.write(`  ${m}\n`);

/** Runs the real CLI; throws with its output when it fails. */
export function ctrdbg(args, options = {}) {
  const r = spawnSync(process.execPath, [join(repo, 'dist/main.js'), ...args], { env, encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  if (r.status !== 0 && !options.allowFail) throw new Error(`ctrdbg ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

export function ctrdbgJson(args) {
  return JSON.parse(ctrdbg([...args, '--json']).stdout);
}

/** The bench lab, up and running the debug build. */
export function benchLab({ setup = true } = {}) {
  ctrdbg(['lab', 'up']);
  if (setup) ctrdbg(['setup', 'lab']);
  return ctrdbgJson(['lab', 'status']);
}

export function timed(fn) {
  const t = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

export async function timedAsync(fn) {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const round = (n, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

/** The namespaces-service load generator (scripts/bench/nsclient), built once in GOPATH mode. */
export function nsclient() {
  const source = readFileSync(join(repo, 'scripts/bench/nsclient/main.go'));
  const out = join(env.CTRDBG_CACHE_DIR, `nsclient-${createHash('sha256').update(source).digest('hex').slice(0, 12)}`);
  if (existsSync(out)) return out;
  const gopath = join(env.CTRDBG_CACHE_DIR, 'nsclient-gopath');
  const pkg = join(gopath, 'src/ctrdbg.bench/nsclient');
  mkdirSync(dirname(pkg), { recursive: true });
  if (!existsSync(pkg)) symlinkSync(join(repo, 'scripts/bench/nsclient'), pkg);
  execFileSync('go', ['build', '-o', out, '.'], {
    cwd: pkg,
    env: { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:/usr/share/gocode`, GOFLAGS: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return out;
}
