/**
 * The HTML timeline, in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
 * it renders offline, a hit is found by a recorded value and opened, clicking a mark shows its variables in
 * the terminal's order, lanes follow goroutines, hostile recorded strings stay text. A screenshot is written
 * to .out/replay-timeline.png. (The 100,000-hit timing is `make bench`, scripts/bench/replay-html.bench.mjs.)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayCommand } from '../../src/commands/replay.js';
import type { HitRecord } from '../../src/recording/format.js';
import { openRecording } from '../../src/recording/reader.js';
import { jsonForScript, type PagePayload, renderHtmlReport } from '../../src/replay/htmlReport.js';

const root = resolve(import.meta.dirname, '..', '..');
const sample = join(root, 'test', 'fixtures', 'sessions', 'sample.jsonl');
const CHROMIUM = '/usr/bin/chromium';
const HOSTILE =
  '</script><script>window.__pwned = 1</script><!-- \u2028 <img src=x onerror="window.__pwned=2">';
const WAIT_MS = 15_000;

describe('jsonForScript', () => {
  it('leaves no way out of a script element and still parses back', () => {
    const text = jsonForScript({ s: HOSTILE });
    expect(text).not.toMatch(/<|>|\u2028/);
    expect(JSON.parse(text)).toEqual({ s: HOSTILE });
  });
});

describe('what the page embeds', () => {
  const embedded = (html: string) =>
    JSON.parse(
      /<script type="application\/json" id="session-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? 'null',
    ) as PagePayload;
  const hitsOf = (data: PagePayload) =>
    data.chunks.flatMap((c) => JSON.parse(gunzipSync(Buffer.from(c, 'base64')).toString()) as HitRecord[]);

  it('embeds only the hits --filter selects, and says so', () => {
    const session = openRecording(sample);
    const data = embedded(renderHtmlReport(session, { filter: ['set=tasks-create'] }));
    expect(data.seq).toEqual([5, 7, 11]);
    expect(hitsOf(data).every((h) => h.breakpoint.set === 'tasks-create')).toBe(true);
    expect(data.notice).toBe('showing the 3 hits that match --filter (of 12)');
  });

  it('says so when --filter leaves the page empty', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-html-empty-'));
    try {
      const out = await replayCommand(
        sample,
        { html: join(dir, 'empty.html'), filter: ['nothing-records-this'] },
        { input: process.stdin, output: process.stdout, isTTY: false },
      );
      expect(out.text).toContain(
        '! --filter "nothing-records-this" matched none of the 12 hits: the page is empty',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hits that name their process get a process column (lanes per process)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-html-process-'));
    try {
      const lines = readFileSync(sample, 'utf8').trim().split('\n');
      const withProcess = lines.map((l, i) => {
        const record = JSON.parse(l);
        if (record.type !== 'hit') return l;
        record.process =
          record.breakpoint.set === 'tasks-create'
            ? { pid: 51034 + i, binary: '/usr/bin/containerd-shim-runc-v2' }
            : { pid: 48213, binary: '/usr/bin/containerd' };
        return JSON.stringify(record);
      });
      const file = join(dir, 'processes.jsonl');
      writeFileSync(file, `${withProcess.join('\n')}\n`);
      const data = embedded(renderHtmlReport(openRecording(file)));
      expect(data.processes.map((p) => p.pid)).toEqual([48213, 51039, 51041, 51045]);
      expect(data.process?.slice(0, 5)).toEqual([0, 0, 0, 0, 1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('caps the page at --max-hits, naming what was left out', () => {
    const session = openRecording(sample);
    const data = embedded(renderHtmlReport(session, { maxHits: 5 }));
    expect(data.seq).toEqual([1, 2, 3, 4, 5]);
    expect(data.notice).toBe(
      'showing the first 5 of 12 matching hits (of 12); narrow with --filter or raise --max-hits',
    );
    expect(embedded(renderHtmlReport(session)).notice).toBe('');
  });

  it('per-hit columns for the timeline and table; the full hits as they were recorded, compressed', () => {
    const session = openRecording(sample);
    const data = embedded(renderHtmlReport(session));
    expect(data.breakpoints.map((b) => b.name)).toEqual([
      'lab-create/namespace-create',
      'lab-create/create-container',
      'lab-create/create-task',
      'tasks-create/shim-create',
    ]);
    // Hit 9's recorded values, as the terminal renders them inline.
    const nine = data.seq.indexOf(9);
    const bp = data.breakpoints[data.breakpoint[nine]!]!;
    let at = 0;
    for (let i = 0; i < nine; i++) at += data.breakpoints[data.breakpoint[i]!]!.expressions.length;
    const values = bp.expressions.map((k, j) => [data.expressions[k], data.dict[data.values[at + j]!]]);
    expect(values.slice(0, 2)).toEqual([
      ['req.Container.ID', '"c3"'],
      ['req.Container.Image', '"docker.io/library/alpine:3.20"'],
    ]);
    const lines = readFileSync(sample, 'utf8').trim().split('\n').slice(1, 13);
    expect(hitsOf(data)).toEqual(lines.map((l) => JSON.parse(l)));
  });
});

// Debian's Chromium is installed by scripts/bootstrap (never a downloaded browser); without it this suite fails.
describe('HTML timeline in headless Chromium', () => {
  let dir: string;
  let html: string;
  let context: BrowserContext;
  let page: Page;
  const requests: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctrdbg-html-'));
    // A recorded string that tries to end the script element: it must show up as text.
    const lines = readFileSync(sample, 'utf8').split('\n');
    lines[1] = lines[1]!.replace(
      '"value":"lab-demo","len":8}}',
      `"value":${JSON.stringify(HOSTILE)},"len":8}}`,
    );
    expect(lines[1]).toContain('__pwned');
    const session = join(dir, 'hostile.jsonl');
    writeFileSync(session, lines.join('\n'));
    html = join(dir, 'report.html');
    const out = await replayCommand(
      session,
      { html },
      { input: process.stdin, output: process.stdout, isTTY: false },
    );
    expect(out.text).toContain(`wrote ${html} (12 hits`);
    expect(statSync(html).mode & 0o777).toBe(0o600);

    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
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
    context.setDefaultTimeout(WAIT_MS);
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(html).href, { timeout: WAIT_MS });
    await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  }, 90_000);

  afterAll(async () => {
    await context?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('draws every hit in lanes per breakpoint, and fetches nothing', async () => {
    expect(await page.locator('#density').getAttribute('data-drawn')).toBe('12');
    expect(await page.locator('#lane-labels .lane-name').allTextContents()).toEqual([
      'lab-create/namespace-create',
      'lab-create/create-container',
      'lab-create/create-task',
      'tasks-create/shim-create',
    ]);
    expect(await page.locator('#count').textContent()).toBe('12 of 12 hits');
    expect(await page.locator('#hits-body .row').count()).toBe(12);
    expect(requests).toEqual([pathToFileURL(html).href]);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('finds a hit by a recorded value and opens it', async () => {
    // A bare word searches the recorded values too, as `replay --filter` does.
    await page.fill('#filter', 'alpine');
    await expect.poll(() => page.locator('#count').textContent(), { timeout: WAIT_MS }).toBe('1 of 12 hits');
    // One breakpoint in view: a column per recorded expression.
    expect(await page.locator('#hits-head span').allTextContents()).toEqual([
      '#',
      'time',
      'breakpoint',
      'goroutine',
      'req.Container.ID',
      'req.Container.Image',
      'req.Container.Labels',
      'string(req.Container.Spec.Value)',
      'stopped',
      'where',
    ]);
    const row = page.locator('#hits-body .row[data-seq="9"]');
    expect(await row.textContent()).toContain('"docker.io/library/alpine:3.20"');
    await row.click();
    await expect
      .poll(() => page.locator('#details').getAttribute('data-loaded'), { timeout: WAIT_MS })
      .toBe('9');
    expect(await page.locator('#details h2').textContent()).toBe('hit 9 · lab-create/create-container');
    expect(await page.locator('[data-section="expressions"]').textContent()).toContain(
      'req.Container.Image string = "docker.io/library/alpine:3.20"',
    );
    // One expression's value: the same language.
    await page.fill('#filter', 'req.Container.ID=c2');
    await expect.poll(() => page.locator('#count').textContent(), { timeout: WAIT_MS }).toBe('1 of 12 hits');
    expect(await page.locator('#hits-body .row').getAttribute('data-seq')).toBe('3');
    await page.fill('#filter', 'colour=red');
    await expect
      .poll(() => page.locator('#filter-error').textContent(), { timeout: WAIT_MS })
      .toBe('unknown filter key "colour" in --filter colour=red');
    await page.fill('#filter', '');
    await expect.poll(() => page.locator('#count').textContent(), { timeout: WAIT_MS }).toBe('12 of 12 hits');
  });

  it('a click on a mark opens its hit: expressions, parameters, receiver collapsed, locals, stack', async () => {
    const box = (await page.locator('#density').boundingBox())!;
    const at = (await page.evaluate(() =>
      (
        window as unknown as { ctrdbgTimeline: { pointOf(seq: number): { x: number; y: number } } }
      ).ctrdbgTimeline.pointOf(3),
    ))!;
    await page.mouse.click(box.x + at.x, box.y + at.y);
    await expect
      .poll(() => page.locator('#details').getAttribute('data-loaded'), { timeout: WAIT_MS })
      .toBe('3');
    expect(await page.locator('#details h2').textContent()).toBe('hit 3 · lab-create/create-container');
    expect(await page.locator('#location').textContent()).toContain('services/containers/local.go:117');
    expect(await page.locator('#details h3').allTextContents()).toEqual([
      'Recorded expressions',
      'Parameters',
      'Locals',
      'Stack',
    ]);
    expect(await page.locator('#details ol li').count()).toBe(8);
    const receiver = page.locator('details.section[data-section-box="receiver"]');
    expect(await receiver.getAttribute('open')).toBeNull();
    expect(await receiver.locator('> summary').textContent()).toBe('Receiver l (5 lines)');
    const params = page.locator('[data-section="parameters"]');
    await params.locator('details[data-path="req"] > summary').click();
    await params.locator('details[data-path="Container"] > summary').click();
    const container = params.locator('details[data-path="Container"]');
    await expect.poll(() => container.textContent(), { timeout: WAIT_MS }).toContain('ID string = "c2"');
    await container.locator('details[data-path="Labels"] > summary').click();
    // Children render when the <details> opens: wait for them rather than read right after the click.
    await expect
      .poll(() => container.locator('details[data-path="Labels"]').textContent(), { timeout: WAIT_MS })
      .toContain('"io.ctrdbg/registry-token" string = <redacted>');
    expect(await page.locator('[data-section="locals"]').textContent()).toContain(
      'created containers.Container = <unreadable: could not find loclist entry',
    );
    expect(await page.locator('[data-section="expressions"]').textContent()).toContain('(96 of 2890 bytes)');
    expect(await page.locator('#hits-body .row.selected').getAttribute('data-seq')).toBe('3');
  });

  it('shows a hostile recorded string as text', async () => {
    await page.locator('#hits-body .row[data-seq="1"]').click();
    const exprs = page.locator('[data-section="expressions"]');
    await expect
      .poll(() => exprs.textContent(), { timeout: WAIT_MS })
      .toContain('window.__pwned = 1</script>');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('lanes per goroutine (the busiest N and a lane search), zoom, and a lane click narrows the filter', async () => {
    await page.locator('input[name=lanes][value=goroutine]').check();
    await expect
      .poll(() => page.locator('#lane-labels .lane-name').allTextContents(), { timeout: WAIT_MS })
      .toEqual(['g41', 'g57', 'g63', 'g88']);
    await page.selectOption('#lane-count', '8');
    await page.fill('#lane-search', '8');
    await expect
      .poll(() => page.locator('#lane-labels .lane-name').allTextContents(), { timeout: WAIT_MS })
      .toEqual(['g88', '+ 3 more goroutines']);
    await page.fill('#lane-search', '');
    const before = await page.locator('#window').textContent();
    await page.click('#zoom-in');
    expect(await page.locator('#window').textContent()).not.toBe(before);
    await page.click('#zoom-fit');
    expect(await page.locator('#window').textContent()).toBe(before);
    await page.locator('#lane-labels .lane-label', { hasText: 'g63' }).click();
    await expect.poll(() => page.inputValue('#filter'), { timeout: WAIT_MS }).toBe('g=63');
    expect(await page.locator('#count').textContent()).toBe('3 of 12 hits');
    expect(await page.locator('#density').getAttribute('data-drawn')).toBe('3');
    await page.fill('#filter', '');
    await page.locator('input[name=lanes][value=breakpoint]').check();
  });

  it('writes a screenshot', async () => {
    await page.locator('#hits-body .row[data-seq="9"]').click();
    await expect
      .poll(() => page.locator('#details').getAttribute('data-loaded'), { timeout: WAIT_MS })
      .toBe('9');
    const outDir = join(root, '.out');
    mkdirSync(outDir, { recursive: true });
    const png = join(outDir, 'replay-timeline.png');
    rmSync(png, { force: true });
    await page.screenshot({ path: png, fullPage: true, timeout: WAIT_MS });
    expect(statSync(png).size).toBeGreaterThan(10_000);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });
});
