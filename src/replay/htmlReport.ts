/**
 * `ctrdbg replay FILE --html OUT`: one self-contained HTML page (inline CSS and JS, the session embedded,
 * nothing fetched at view time) that stays usable at 100,000 hits: a canvas density timeline with lanes
 * (per breakpoint, goroutine or process; the busiest few plus a lane search), zoom and pan, a virtualised
 * table whose columns are the recorded expressions, the filter language of the terminal, and a hit's detail.
 *
 * The page gets per-hit columns (time, breakpoint, goroutine, stop time, each recorded expression's inline
 * value) as plain arrays, and the full hits as gzip-compressed chunks it inflates on demand (the browser's
 * DecompressionStream), so opening a large recording parses only what the timeline and table need.
 *
 * The rendering rules (render.ts) and the filter language (filter.ts) are the terminal's own functions,
 * serialised into the page, so the page cannot drift from `replay --goto` and `--filter`.
 *
 * Everything recorded is untrusted text (it came from containerd's memory): it is embedded only inside a
 * JSON script block with `<`, `>`, `&` and the JS line separators escaped, and the page's script inserts it
 * with textContent, never as HTML.
 */
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { inputError } from '../errors.js';
import type { HitRecord } from '../recording/format.js';
import type { RecordingFile } from '../recording/reader.js';
import { formatBytes } from '../util/output.js';
import { FILTER_FUNCTIONS, filterHelp } from './filter.js';
import { PAGE_CSS, PAGE_SCRIPT } from './htmlPage.js';
import { RENDER_FUNCTIONS } from './render.js';
import { expressionTexts, parseFilter, recordedExpressions, selectHits } from './selection.js';
import { summaryView } from './terminal.js';

export interface HtmlReportOptions {
  /** Hits to embed, as --filter selects them. */
  filter?: string[];
  /** At most this many hits are embedded; the rest are named, not shown. */
  maxHits?: number;
}

/** Enough for the 100,000-hit recordings the page is built for; narrow larger ones with --filter. */
export const DEFAULT_HTML_MAX_HITS = 200_000;
/** Hits per compressed detail chunk: a click inflates one chunk (a few hundred KB of JSON at most). */
export const DETAIL_CHUNK_HITS = 256;

/** JSON that is safe inside <script>: no `</script>`, no `<!--`, no U+2028/2029 surprises. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What the page embeds (the `session-data` script block). */
export interface PagePayload {
  summary: ReturnType<typeof summaryView>['data'];
  notice: string;
  /** The file as given, for the `ctrdbg replay FILE --goto N` hint. */
  file: string;
  filterHelp: string;
  /** Every recorded expression: filter keys and table columns. */
  expressions: string[];
  breakpoints: Array<{ id: number; name: string; set: string; expressions: number[] }>;
  locations: Array<{ function: string; file: string; line: number }>;
  /** Per-hit columns, in file order. */
  seq: number[];
  t: number[];
  goroutine: number[];
  breakpoint: number[];
  location: number[];
  stoppedMs: number[];
  /** Processes, when the recording names them per hit (index -1: none). */
  processes: Array<{ pid: number; binary: string }>;
  process: number[] | null;
  /** Inline values: hit i's breakpoint expressions, in order, at values[offset(i) …] as indices into dict (-1: not recorded). */
  dict: string[];
  values: number[];
  chunkHits: number;
  /** base64 of gzip(JSON array of the hits of chunk k). */
  chunks: string[];
}

export function buildPayload(session: RecordingFile, options: HtmlReportOptions = {}): PagePayload {
  const summary = summaryView(session).data;
  const max = options.maxHits ?? DEFAULT_HTML_MAX_HITS;
  const filter = parseFilter(session.header, options.filter ?? []);
  const selected = selectHits(session, filter);
  const chosen = selected.slice(0, max);
  const notice =
    selected.length > chosen.length
      ? `showing the first ${chosen.length} of ${selected.length} matching hits (of ${session.hitCount}); narrow with --filter or raise --max-hits`
      : selected.length < session.hitCount
        ? `showing the ${selected.length} hits that match --filter (of ${session.hitCount})`
        : '';
  const expressions = recordedExpressions(session.header);
  const exprIndex = new Map(expressions.map((e, i) => [e, i]));
  const meta = session.meta();
  const breakpoints: PagePayload['breakpoints'] = [];
  const bpIndex = new Map<string, number>();
  const addBreakpoint = (b: { id: number; name: string; set: string }, recorded: readonly string[]) => {
    const declared = session.header.breakpoints.find((d) => d.name === b.name);
    // A hit that records an expression its header entry does not list still gets its column.
    const exprs = [...(declared?.expressions ?? [])];
    for (const e of recorded) if (!exprs.includes(e)) exprs.push(e);
    for (const e of exprs)
      if (!exprIndex.has(e)) {
        exprIndex.set(e, expressions.length);
        expressions.push(e);
      }
    const i = breakpoints.length;
    breakpoints.push({
      id: b.id,
      name: b.name,
      set: b.set,
      expressions: exprs.map((e) => exprIndex.get(e) ?? 0),
    });
    bpIndex.set(b.name, i);
    return i;
  };
  const bpOf = (hit: HitRecord): number =>
    bpIndex.get(hit.breakpoint.name) ??
    addBreakpoint(
      hit.breakpoint,
      hit.expressions.map((e) => e.expr),
    );
  const payload: PagePayload = {
    summary,
    notice,
    file: session.path,
    filterHelp: filterHelp(),
    expressions,
    breakpoints,
    locations: meta.locations.map((l) => ({ function: l.function, file: l.file, line: l.line })),
    seq: [],
    t: [],
    goroutine: [],
    breakpoint: [],
    location: [],
    stoppedMs: [],
    processes: [],
    process: null,
    dict: [],
    values: [],
    chunkHits: DETAIL_CHUNK_HITS,
    chunks: [],
  };
  // Lanes in the header's order (the sets' order), for the breakpoints that have hits.
  for (const b of session.header.breakpoints) {
    if (!bpIndex.has(b.name) && meta.breakpoints.some((m) => m.name === b.name)) addBreakpoint(b, []);
  }
  const dict = new Map<string, number>();
  const intern = (text: string) => {
    let i = dict.get(text);
    if (i === undefined) {
      i = payload.dict.length;
      payload.dict.push(text);
      dict.set(text, i);
    }
    return i;
  };
  const processIndex = new Map<string, number>();
  const processes: number[] = [];
  let anyProcess = false;
  let chunk: string[] = [];
  const flush = () => {
    if (chunk.length === 0) return;
    payload.chunks.push(gzipSync(`[${chunk.join(',')}]`, { level: 6 }).toString('base64'));
    chunk = [];
  };
  for (const index of chosen) {
    const raw = session.hitTextAt(index);
    const hit = session.parseHitText(index, raw);
    const bp = bpOf(hit);
    payload.seq.push(hit.seq);
    payload.t.push(hit.t);
    payload.goroutine.push(hit.goroutine.id);
    payload.breakpoint.push(bp);
    payload.location.push(meta.location[index] ?? 0);
    payload.stoppedMs.push(hit.stoppedMs);
    if (hit.process) {
      anyProcess = true;
      const key = `${hit.process.pid}\u0000${hit.process.binary}`;
      let p = processIndex.get(key);
      if (p === undefined) {
        p = payload.processes.length;
        payload.processes.push({ pid: hit.process.pid, binary: hit.process.binary });
        processIndex.set(key, p);
      }
      processes.push(p);
    } else processes.push(-1);
    const texts = expressionTexts(hit);
    for (const e of breakpoints[bp]?.expressions ?? []) {
      const text = texts.get(expressions[e] ?? '');
      payload.values.push(text === undefined ? -1 : intern(text));
    }
    // The stored line is the hit as recorded: embed it as it is, without a parse/stringify round trip.
    chunk.push(raw);
    if (chunk.length === DETAIL_CHUNK_HITS) flush();
  }
  flush();
  if (anyProcess) payload.process = processes;
  return payload;
}

/** The page's script: the shared rendering and filter functions, then the page itself. */
function pageScript(): string {
  const shared = [...RENDER_FUNCTIONS, ...FILTER_FUNCTIONS].map((f) => f.toString()).join('\n');
  return `(function () {\n'use strict';\n${shared}\n${PAGE_SCRIPT}\n})();`;
}

export function renderHtmlReport(session: RecordingFile, options: HtmlReportOptions = {}): string {
  return renderPage(session, options).html;
}

function renderPage(session: RecordingFile, options: HtmlReportOptions): { html: string; hits: number } {
  const payload = buildPayload(session, options);
  const title = `ctrdbg replay — ${payload.summary.target.spec} — ${payload.summary.hits} hits`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
  <h1>ctrdbg replay</h1>
  <div id="meta"></div>
</header>
<section id="controls">
  <label class="filter">filter <input id="filter" type="search" spellcheck="false" autocomplete="off" placeholder="a value, req.Container.ID=c2, set=lab-create, g=41 …"></label>
  <button id="filter-help-toggle" type="button" title="the filter language">?</button>
  <span id="count"></span>
  <span id="filter-error" class="err" role="alert"></span>
  <pre id="filter-help" hidden></pre>
</section>
<section id="timeline-box">
  <div id="timeline-controls">
    <span class="group">lanes:
      <label><input type="radio" name="lanes" value="breakpoint" checked> per breakpoint</label>
      <label><input type="radio" name="lanes" value="goroutine"> per goroutine</label>
      <label id="lanes-process" hidden><input type="radio" name="lanes" value="process"> per process</label>
    </span>
    <label>busiest <select id="lane-count"><option>8</option><option selected>12</option><option>24</option><option>48</option></select></label>
    <label>lane <input id="lane-search" type="search" spellcheck="false" autocomplete="off" placeholder="search lanes (g41, create…)" size="22"></label>
    <span class="group zoom"><button id="zoom-in" type="button" title="zoom in (+, wheel)">+</button><button id="zoom-out" type="button" title="zoom out (−, wheel)">−</button><button id="zoom-fit" type="button" title="whole recording (0)">fit</button></span>
    <span id="window" class="hint"></span>
  </div>
  <div id="timeline">
    <div id="lane-labels"></div>
    <div id="canvas-box"><canvas id="density" aria-label="timeline of hits: drag to pan, wheel to zoom, click a mark to open its hit"></canvas><div id="tooltip" hidden></div></div>
  </div>
</section>
<main>
  <section id="list-box" tabindex="0" aria-label="hits"><div id="hits" role="grid"><div id="hits-head" class="row head" role="row"></div><div id="hits-body"></div></div></section>
  <section id="details"><p class="hint">Click a hit in the timeline or the table.</p></section>
</main>
<script type="application/json" id="session-data">${jsonForScript(payload)}</script>
<script>${pageScript()}</script>
</body>
</html>
`;
  return { html, hits: payload.seq.length };
}

export async function writeHtmlReport(
  session: RecordingFile,
  out: string,
  options: HtmlReportOptions = {},
): Promise<{ data: { file: string; out: string; hits: number; bytes: number }; text: string }> {
  const { html, hits: embedded } = renderPage(session, options);
  try {
    await writeFile(out, html, { mode: 0o600 });
  } catch (error) {
    throw inputError(`cannot write ${out}: ${(error as Error).message}`, { cause: error });
  }
  const bytes = Buffer.byteLength(html);
  return {
    data: { file: session.path, out, hits: embedded, bytes },
    text:
      `wrote ${out} (${embedded} hits, ${formatBytes(bytes)}); open it in a browser, it needs no network` +
      (embedded === 0 && options.filter?.length && session.hitCount > 0
        ? `\n! --filter ${options.filter.map((f) => JSON.stringify(f)).join(' and ')} matched none of the ${session.hitCount} hits: the page is empty`
        : ''),
  };
}
