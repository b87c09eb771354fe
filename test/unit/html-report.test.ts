/**
 * The HTML timeline, in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
 * it renders offline, clicking a hit shows its variables, the filter narrows, hostile recorded strings stay
 * text. A screenshot is written to .out/replay-timeline.png.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayCommand } from '../../src/commands/replay.js';
import { openRecording } from '../../src/recording/reader.js';
import { jsonForScript, renderHtmlReport } from '../../src/replay/htmlReport.js';

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
    ) as {
      hits: { seq: number; breakpoint: { set: string } }[];
      notice: string;
    };

  it('embeds only the hits --filter selects, and says so', () => {
    const session = openRecording(sample);
    const data = embedded(renderHtmlReport(session, { filter: ['set=tasks-create'] }));
    expect(data.hits.length).toBeGreaterThan(0);
    expect(data.hits.every((h) => h.breakpoint.set === 'tasks-create')).toBe(true);
    expect(data.notice).toBe(`showing the ${data.hits.length} hits that match --filter (of 12)`);
  });

  it('caps the page at --max-hits, naming what was left out', () => {
    const session = openRecording(sample);
    const data = embedded(renderHtmlReport(session, { maxHits: 5 }));
    expect(data.hits.map((h) => h.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(data.notice).toBe(
      'showing the first 5 of 12 matching hits (of 12); narrow with --filter or raise --max-hits',
    );
    expect(embedded(renderHtmlReport(session)).notice).toBe('');
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

  it('renders one mark per hit, lanes per breakpoint, and fetches nothing', async () => {
    expect(await page.locator('#timeline circle.hit').count()).toBe(12);
    expect(await page.locator('#timeline .lane-label').allTextContents()).toEqual([
      'lab-create/namespace-create',
      'lab-create/create-container',
      'lab-create/create-task',
      'tasks-create/shim-create',
    ]);
    expect(await page.locator('#count').textContent()).toBe('12 of 12 hits');
    expect(requests).toEqual([pathToFileURL(html).href]);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('clicking a hit shows its location, stack and expandable variables', async () => {
    await page.locator('#timeline circle.hit[data-seq="3"]').click();
    await expect
      .poll(() => page.locator('#details h2').textContent(), { timeout: WAIT_MS })
      .toBe('hit 3 · lab-create/create-container');
    expect(await page.locator('#location').textContent()).toContain('services/containers/local.go:117');
    expect(await page.locator('#details ol li').count()).toBe(8);
    const args = page.locator('[data-section="arguments"]');
    await args.locator('details[data-path="req"] > summary').click();
    await args.locator('details[data-path="Container"] > summary').click();
    const container = args.locator('details[data-path="Container"]');
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
    expect(await page.locator('#hits tbody tr.selected').getAttribute('data-seq')).toBe('3');
  });

  it('shows a hostile recorded string as text', async () => {
    await page.locator('#hits tbody tr[data-seq="1"]').click();
    const exprs = page.locator('[data-section="expressions"]');
    await expect
      .poll(() => exprs.textContent(), { timeout: WAIT_MS })
      .toContain('window.__pwned = 1</script>');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('the filter box narrows the timeline and the table; lanes can follow goroutines', async () => {
    await page.fill('#filter', 'set=tasks-create');
    await expect.poll(() => page.locator('#timeline circle.hit').count(), { timeout: WAIT_MS }).toBe(3);
    expect(await page.locator('#count').textContent()).toBe('3 of 12 hits');
    expect(await page.locator('#hits tbody tr').count()).toBe(3);
    await page.fill('#filter', 'g41');
    await expect.poll(() => page.locator('#timeline circle.hit').count(), { timeout: WAIT_MS }).toBe(4);
    await page.fill('#filter', '');
    await page.locator('input[name=lanes][value=goroutine]').check();
    await expect
      .poll(() => page.locator('#timeline .lane-label').allTextContents(), { timeout: WAIT_MS })
      .toEqual(['goroutine 41', 'goroutine 57', 'goroutine 63', 'goroutine 88']);
    await page.locator('input[data-goroutine="88"]').uncheck();
    await expect.poll(() => page.locator('#timeline circle.hit').count(), { timeout: WAIT_MS }).toBe(10);
    await page.locator('input[data-goroutine="88"]').check();
    await page.locator('input[name=lanes][value=breakpoint]').check();
  });

  it('writes a screenshot', async () => {
    await page.locator('#timeline circle.hit[data-seq="9"]').click();
    const outDir = join(root, '.out');
    mkdirSync(outDir, { recursive: true });
    const png = join(outDir, 'replay-timeline.png');
    rmSync(png, { force: true });
    await page.screenshot({ path: png, fullPage: true, timeout: WAIT_MS });
    expect(statSync(png).size).toBeGreaterThan(10_000);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });
});
