#!/usr/bin/env node
// HTML timeline benchmark: a generated 100k-hit session (the replay bench's compact hits) written as one page
// with `ctrdbg replay FILE --html OUT`, opened in Debian's headless Chromium (playwright-core, never a
// downloaded browser). Times: writing the page; opening it until it is ready (timeline drawn, table filled);
// a click on a timeline mark until that hit's detail is shown; a bare-word filter over every hit. The anchor
// for opening is the same file with JavaScript off (the browser's own load and parse of the bytes).
// Screenshots go to .out/. Progress goes to stderr; the last stdout line is the JSON result.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HITS = Number(process.env.BENCH_HTML_HITS ?? 100_000);
const RUNS = 3;
const GOAL_MS = 2000;
const CHROMIUM = '/usr/bin/chromium';
const mainJs = join(root, 'dist', 'main.js');
const out = join(root, '.out');
const log = (m) => process.stderr.write(`replay-html bench: ${m}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (!existsSync(mainJs)) {
  log('dist/ missing, building');
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
}
if (!existsSync(CHROMIUM))
  throw new Error(`${CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium`);
mkdirSync(out, { recursive: true });

const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-html-bench-'));
const file = join(dir, 'bench.jsonl');
const html = join(dir, 'bench.html');
let context;
try {
  const { writeSession } = await import('../make-sample-session.mjs');
  await writeSession(file, { hits: HITS, compact: true });
  log(`generated ${HITS} hits, ${(statSync(file).size / 1e6).toFixed(1)} MB`);

  const writeRuns = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, [mainJs, 'replay', file, '--html', html], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`replay --html failed (${r.status}): ${r.stderr}`);
    writeRuns.push(performance.now() - t);
  }
  const pageBytes = statSync(html).size;
  log(
    `page ${(pageBytes / 1e6).toFixed(1)} MB, written in ${median(writeRuns).toFixed(0)} ms (median of ${RUNS})`,
  );

  const launch = (javaScriptEnabled) =>
    chromium.launchPersistentContext(join(dir, `profile-${javaScriptEnabled}`), {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      javaScriptEnabled,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
    });
  const url = pathToFileURL(html).href;

  // The anchor: the same bytes loaded with no script at all.
  context = await launch(false);
  const plainRuns = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    const t = performance.now();
    await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
    plainRuns.push(performance.now() - t);
    await page.close();
  }
  await context.close();

  context = await launch(true);
  const browserVersion =
    context.browser()?.version() ?? spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const openRuns = [];
  const clickRuns = [];
  const filterRuns = [];
  const requests = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const t = performance.now();
    await page.goto(url, { timeout: 60_000 });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    openRuns.push(performance.now() - t);
    const drawn = Number(await page.locator('#density').getAttribute('data-drawn'));
    if (drawn !== HITS) throw new Error(`the timeline drew ${drawn} of ${HITS} hits`);

    // A click on the mark of a hit in the middle of the recording, answered when its detail is on screen.
    const seq = Math.floor(HITS / 2) + i * 997;
    const at = await page.evaluate((s) => window.ctrdbgTimeline.pointOf(s), seq);
    const box = await page.locator('#density').boundingBox();
    const c = performance.now();
    await page.mouse.click(box.x + at.x, box.y + at.y);
    await page.waitForSelector('#details[data-loaded]', { timeout: 30_000 });
    clickRuns.push(performance.now() - c);

    // A bare word over every hit (names and recorded values), as the filter box runs it.
    const before = await page.locator('#count').textContent();
    const f = performance.now();
    await page.fill('#filter', 'alpine');
    await page.press('#filter', 'Enter');
    await page.waitForFunction((prev) => document.getElementById('count').textContent !== prev, before, {
      timeout: 30_000,
    });
    filterRuns.push(performance.now() - f);
    if (i === 0) {
      await page.fill('#filter', '');
      await page.press('#filter', 'Enter');
      await page.mouse.click(box.x + at.x, box.y + at.y);
      await page.waitForSelector('#details[data-loaded]', { timeout: 30_000 });
      await page.screenshot({ path: join(out, 'replay-html-100k.png'), fullPage: true });
      await page.check('input[name=lanes][value=goroutine]');
      await page.click('#zoom-in');
      await page.click('#zoom-in');
      await page.screenshot({ path: join(out, 'replay-html-100k-goroutines.png'), fullPage: true });
    }
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    await page.close();
    log(
      `run ${i + 1}: open ${openRuns[i].toFixed(0)} ms, click ${clickRuns[i].toFixed(0)} ms, filter ${filterRuns[i].toFixed(0)} ms`,
    );
  }
  const foreign = requests.filter((r) => r !== url);
  if (foreign.length) throw new Error(`the page fetched ${foreign.join(', ')}`);

  const cpu = cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${browserVersion}`;
  log(`machine: ${machine}`);
  const open = Math.round(median(openRuns));
  const plain = Math.round(median(plainRuns));
  const click = Math.round(median(clickRuns));
  const k = `${HITS / 1000}k`;
  const rows = [
    { case: `html write ${k}`, metric: 'wall', value: Math.round(median(writeRuns)), unit: 'ms' },
    { case: `html write ${k}`, metric: 'page size', value: Math.round(pageBytes / 1e5) / 10, unit: 'MB' },
    {
      case: `html open ${k} (drawn + table)`,
      metric: 'wall',
      value: open,
      unit: 'ms',
      anchor: { name: 'same page, no JS', value: plain },
      ratio: Math.round((open / Math.max(plain, 1)) * 100) / 100,
      goal: `<= ${GOAL_MS} ms`,
      met: open <= GOAL_MS,
    },
    {
      case: `html click → detail ${k}`,
      metric: 'wall',
      value: click,
      unit: 'ms',
      goal: `<= ${GOAL_MS} ms`,
      met: click <= GOAL_MS,
    },
    { case: `html filter word ${k}`, metric: 'wall', value: Math.round(median(filterRuns)), unit: 'ms' },
  ];
  process.stdout.write(`${JSON.stringify({ suite: 'replay-html', machine, rows })}\n`);
} finally {
  await context?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
