/**
 * `ctrdbg replay FILE --html OUT`: one self-contained HTML page (inline CSS and JS, the session embedded as
 * JSON, nothing fetched at view time) with an SVG timeline of hits, a hit table, a filter box and an
 * expandable view of a hit's stack and variables.
 *
 * Everything recorded is untrusted text (it came from containerd's memory): it is embedded only inside a
 * JSON script block with `<`, `>`, `&` and the JS line separators escaped, and the page's script inserts it
 * with textContent, never as HTML.
 */
import { writeFile } from 'node:fs/promises';
import { inputError } from '../errors.js';
import type { HitRecord } from '../recording/format.js';
import type { RecordingFile } from '../recording/reader.js';
import { formatBytes } from '../util/output.js';
import { parseFilter, selectHits, summaryView } from './terminal.js';

export interface HtmlReportOptions {
  /** Hits to embed, as --filter selects them; also the initial content of the page's filter box. */
  filter?: string[];
  /** At most this many hits are embedded (the page stays usable and small); the rest are named, not shown. */
  maxHits?: number;
}

/** A page with more hits than this gets slow to open and large to share; narrow it with --filter instead. */
export const DEFAULT_HTML_MAX_HITS = 5000;

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

export function renderHtmlReport(session: RecordingFile, options: HtmlReportOptions = {}): string {
  const summary = summaryView(session).data;
  const max = options.maxHits ?? DEFAULT_HTML_MAX_HITS;
  const selected = selectHits(
    session.meta(),
    options.filter?.length ? parseFilter(options.filter) : undefined,
  );
  const hits: HitRecord[] = selected.slice(0, max).map((i) => session.readHitAt(i));
  const notice =
    selected.length > hits.length
      ? `showing the first ${hits.length} of ${selected.length} matching hits (of ${session.hitCount}); narrow with --filter or raise --max-hits`
      : selected.length < session.hitCount
        ? `showing the ${selected.length} hits that match --filter (of ${session.hitCount})`
        : '';
  const payload = { summary, hits, filter: '', notice };
  const title = `ctrdbg replay — ${summary.target.spec} — ${summary.hits} hits`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <h1>ctrdbg replay</h1>
  <div id="meta"></div>
</header>
<section id="controls">
  <label>filter <input id="filter" type="search" placeholder="set=lab-create, goroutine=42, bp=create-task, or any text" size="48"></label>
  <span id="count"></span>
  <span class="group">lanes:
    <label><input type="radio" name="lanes" value="breakpoint" checked> per breakpoint</label>
    <label><input type="radio" name="lanes" value="goroutine"> per goroutine</label>
  </span>
  <div id="goroutines"></div>
</section>
<section id="timeline-box"><svg id="timeline" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline of hits"></svg></section>
<main>
  <section id="list-box"><table id="hits"><thead><tr><th>#</th><th>time</th><th>breakpoint</th><th>goroutine</th><th>where</th></tr></thead><tbody></tbody></table></section>
  <section id="details"><p class="hint">Click a hit in the timeline or the table.</p></section>
</main>
<script type="application/json" id="session-data">${jsonForScript(payload)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

export async function writeHtmlReport(
  session: RecordingFile,
  out: string,
  options: HtmlReportOptions = {},
): Promise<{ data: { file: string; out: string; hits: number; bytes: number }; text: string }> {
  const html = renderHtmlReport(session, options);
  const matching = selectHits(
    session.meta(),
    options.filter?.length ? parseFilter(options.filter) : undefined,
  ).length;
  const embedded = Math.min(matching, options.maxHits ?? DEFAULT_HTML_MAX_HITS);
  try {
    await writeFile(out, html, { mode: 0o600 });
  } catch (error) {
    throw inputError(`cannot write ${out}: ${(error as Error).message}`, { cause: error });
  }
  const bytes = Buffer.byteLength(html);
  return {
    data: { file: session.path, out, hits: embedded, bytes },
    text: `wrote ${out} (${embedded} hits, ${formatBytes(bytes)}); open it in a browser, it needs no network`,
  };
}

const CSS = `
:root { --fg:#1d2330; --muted:#667085; --line:#d0d5dd; --bg:#fff; --sel:#fff3c4; font-family: system-ui, sans-serif; }
body { margin:0; color:var(--fg); background:var(--bg); font-size:14px; }
header { padding:10px 16px; border-bottom:1px solid var(--line); display:flex; gap:24px; align-items:baseline; flex-wrap:wrap; }
h1 { font-size:18px; margin:0; }
#meta { color:var(--muted); }
#controls { padding:8px 16px; display:flex; gap:16px; align-items:center; flex-wrap:wrap; border-bottom:1px solid var(--line); }
#goroutines label { margin-right:8px; white-space:nowrap; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:3px; vertical-align:middle; }
#timeline-box { padding:8px 16px; overflow-x:auto; }
#timeline { width:100%; min-width:640px; display:block; }
#timeline .lane-label { font-size:12px; fill:var(--muted); }
#timeline .axis { font-size:11px; fill:var(--muted); }
#timeline .lane { stroke:var(--line); }
#timeline circle.hit { cursor:pointer; stroke:#fff; stroke-width:1.5; }
#timeline circle.hit.selected { stroke:#000; stroke-width:3; }
main { display:grid; grid-template-columns:minmax(320px, 1fr) minmax(360px, 1.4fr); gap:16px; padding:0 16px 16px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
tbody tr { cursor:pointer; }
tbody tr:hover { background:#f2f4f7; }
tbody tr.selected { background:var(--sel); }
#list-box { max-height:70vh; overflow:auto; }
#details { font-size:13px; }
#details h2 { font-size:16px; margin:8px 0; }
#details h3 { font-size:14px; margin:12px 0 4px; }
#details .kv { color:var(--muted); }
.mono, #details .tree, #details ol { font-family: ui-monospace, monospace; }
#details ol { margin:0; padding-left:28px; }
.tree details { margin-left:14px; }
.tree > details, .tree > .leaf { margin-left:0; }
.tree .leaf { margin-left:14px; }
.tree summary { cursor:pointer; }
.type { color:var(--muted); }
.err { color:#b42318; }
.redacted { color:#b54708; }
.hint { color:var(--muted); }
`;

// The page script: plain ES2020, no dependencies, builds every node with createElement/textContent.
const SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('session-data').textContent);
  var hits = data.hits, summary = data.summary;
  var svgNS = 'http://www.w3.org/2000/svg';
  var palette = ['#2e90fa','#f04438','#12b76a','#f79009','#7a5af8','#ee46bc','#06aed4','#669f2a','#dd2590','#4e5ba6'];
  var goroutineIds = Array.from(new Set(hits.map(function (h) { return h.goroutine.id; }))).sort(function (a, b) { return a - b; });
  var colorOf = {};
  goroutineIds.forEach(function (g, i) { colorOf[g] = palette[i % palette.length]; });
  var hiddenGoroutines = {};
  var lanesBy = 'breakpoint';
  var selectedSeq = null;
  var visible = hits;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(svgNS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function offset(ms) { return ms < 1000 ? '+' + ms.toFixed(1) + 'ms' : '+' + (ms / 1000).toFixed(3) + 's'; }
  function shortFn(fn) { var i = fn.lastIndexOf('/'); return i >= 0 ? fn.slice(i + 1) : fn; }
  function shortType(t) { return t.replace(/(?:[\\w.~-]+\\/)+(?=[\\w]+\\.)/g, ''); }
  function base(f) { var i = f.lastIndexOf('/'); return i >= 0 ? f.slice(i + 1) : f; }

  // The filter language of \`ctrdbg replay --filter\`: key=value terms or substrings, comma = and.
  function matcher(text) {
    var terms = text.split(',').map(function (t) { return t.trim(); }).filter(Boolean);
    var preds = terms.map(function (term) {
      var eq = term.indexOf('=');
      if (eq < 0) {
        var needle = term.toLowerCase();
        return function (h) {
          return [h.breakpoint.name, h.breakpoint.set, h.location.function, h.location.file, 'g' + h.goroutine.id]
            .some(function (s) { return s.toLowerCase().indexOf(needle) >= 0; });
        };
      }
      var key = term.slice(0, eq).trim().toLowerCase(), value = term.slice(eq + 1).trim();
      if (key === 'set') return function (h) { return h.breakpoint.set === value; };
      if (key === 'bp' || key === 'breakpoint') return function (h) { return h.breakpoint.name === value || h.breakpoint.name.endsWith('/' + value); };
      if (key === 'function' || key === 'func') return function (h) { return h.location.function.indexOf(value) >= 0; };
      if (key === 'file') return function (h) { return h.location.file.indexOf(value) >= 0; };
      if (key === 'goroutine' || key === 'g') return function (h) { return String(h.goroutine.id) === value; };
      if (key === 'seq') {
        var m = /^(\\d+)(?:-(\\d+))?$/.exec(value);
        var from = m ? Number(m[1]) : NaN, to = m && m[2] ? Number(m[2]) : from;
        return function (h) { return h.seq >= from && h.seq <= to; };
      }
      return function () { return false; };
    });
    return function (h) { return preds.every(function (p) { return p(h); }); };
  }

  function renderMeta() {
    var meta = document.getElementById('meta');
    var c = summary.containerd;
    var parts = [
      'target ' + summary.target.spec,
      'containerd ' + c.version + (c.revision ? ' (' + c.revision + ')' : ''),
      'sha256 ' + c.sha256.slice(0, 12) + '…',
      'sets ' + summary.sets.join(', '),
      summary.hits + ' hits',
      summary.end ? 'end: ' + summary.end.reason : 'no end record',
    ];
    if (data.notice) parts.push(data.notice);
    if (summary.truncated) parts.push('truncated last line skipped');
    meta.textContent = parts.join(' · ');
  }

  function renderGoroutineToggles() {
    var box = document.getElementById('goroutines');
    box.textContent = 'goroutines: ';
    goroutineIds.forEach(function (g) {
      var label = el('label');
      var box2 = el('input', { type: 'checkbox', 'data-goroutine': String(g) });
      box2.checked = !hiddenGoroutines[g];
      box2.addEventListener('change', function () { hiddenGoroutines[g] = !box2.checked; update(); });
      var sw = el('span', { class: 'swatch' });
      sw.style.background = colorOf[g];
      label.appendChild(box2);
      label.appendChild(sw);
      label.appendChild(document.createTextNode('g' + g));
      box.appendChild(label);
    });
  }

  function lanes() {
    if (lanesBy === 'goroutine') return goroutineIds.filter(function (g) { return !hiddenGoroutines[g]; }).map(function (g) { return { key: String(g), label: 'goroutine ' + g }; });
    var names = summary.breakpoints.map(function (b) { return b.name; });
    hits.forEach(function (h) { if (names.indexOf(h.breakpoint.name) < 0) names.push(h.breakpoint.name); });
    return names.map(function (n) { return { key: n, label: n }; });
  }
  function laneKey(h) { return lanesBy === 'goroutine' ? String(h.goroutine.id) : h.breakpoint.name; }

  function renderTimeline() {
    var root = document.getElementById('timeline');
    while (root.firstChild) root.removeChild(root.firstChild);
    var ls = lanes();
    var left = 220, right = 20, top = 16, laneH = 30, width = 1100;
    var height = top + ls.length * laneH + 30;
    root.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    root.setAttribute('height', String(height));
    var t0 = hits.length ? hits[0].t : 0, t1 = hits.length ? hits[hits.length - 1].t : 1;
    if (t1 <= t0) t1 = t0 + 1;
    var x = function (t) { return left + (t - t0) / (t1 - t0) * (width - left - right); };
    ls.forEach(function (lane, i) {
      var y = top + i * laneH + laneH / 2;
      root.appendChild(svg('line', { class: 'lane', x1: left, x2: width - right, y1: y, y2: y }));
      root.appendChild(svg('text', { class: 'lane-label', x: 8, y: y + 4 }, lane.label));
    });
    var axisY = top + ls.length * laneH + 16;
    for (var k = 0; k <= 5; k++) {
      var t = t0 + (t1 - t0) * k / 5;
      root.appendChild(svg('text', { class: 'axis', x: x(t), y: axisY, 'text-anchor': 'middle' }, offset(t)));
    }
    var laneIndex = {};
    ls.forEach(function (lane, i) { laneIndex[lane.key] = i; });
    visible.forEach(function (h) {
      var i = laneIndex[laneKey(h)];
      if (i === undefined) return;
      var c = svg('circle', { class: 'hit' + (h.seq === selectedSeq ? ' selected' : ''), cx: x(h.t), cy: top + i * laneH + laneH / 2, r: 7, fill: colorOf[h.goroutine.id], 'data-seq': String(h.seq) });
      c.appendChild(svg('title', {}, '#' + h.seq + ' ' + h.breakpoint.name + ' g' + h.goroutine.id + ' ' + offset(h.t)));
      c.addEventListener('click', function () { select(h.seq); });
      root.appendChild(c);
    });
  }

  function renderTable() {
    var body = document.querySelector('#hits tbody');
    while (body.firstChild) body.removeChild(body.firstChild);
    visible.forEach(function (h) {
      var tr = el('tr', { 'data-seq': String(h.seq) });
      if (h.seq === selectedSeq) tr.className = 'selected';
      [String(h.seq), offset(h.t), h.breakpoint.name, 'g' + h.goroutine.id, shortFn(h.location.function) + ':' + h.location.line]
        .forEach(function (text) { tr.appendChild(el('td', null, text)); });
      tr.addEventListener('click', function () { select(h.seq); });
      body.appendChild(tr);
    });
    document.getElementById('count').textContent = visible.length + ' of ' + hits.length + ' hits';
  }

  function children(v) {
    var cs = v.children || [];
    if (cs.length === 1 && cs[0].name === '' && (v.kind === 'ptr' || v.kind === 'interface')) return cs[0].children || [];
    return cs;
  }
  function valueText(v) {
    if (v.redacted) return '<redacted>';
    if (v.error !== undefined) return '<unreadable: ' + v.error + '>';
    if (v.kind === 'string' && v.value !== undefined) return JSON.stringify(v.value) + (v.truncated ? '… (' + v.value.length + ' of ' + v.len + ' bytes)' : '');
    var parts = [];
    if (v.value !== undefined) parts.push(v.value);
    if (v.len !== undefined && /^(slice|map|array|chan)$/.test(v.kind)) parts.push('len ' + v.len);
    if (v.truncated) parts.push('(not all loaded)');
    return parts.join(' ');
  }
  function line(label, v, parent) {
    var frag = document.createDocumentFragment();
    frag.appendChild(el('span', { class: 'name' }, label));
    if (v.type) { frag.appendChild(document.createTextNode(' ')); frag.appendChild(el('span', { class: 'type' }, shortType(v.type))); }
    var text = valueText(v);
    if (text) {
      frag.appendChild(document.createTextNode(' = '));
      frag.appendChild(el('span', { class: v.redacted ? 'value redacted' : v.error !== undefined ? 'value err' : 'value' }, text));
    }
    parent.appendChild(frag);
  }
  function tree(label, v) {
    var cs = children(v);
    if (!cs.length) { var leaf = el('div', { class: 'leaf' }); line(label, v, leaf); return leaf; }
    var d = el('details', { 'data-path': label });
    var s = el('summary');
    line(label, v, s);
    d.appendChild(s);
    d.addEventListener('toggle', function fill() {
      if (!d.open || d.dataset.filled) return;
      d.dataset.filled = '1';
      cs.forEach(function (c) { d.appendChild(tree(c.name, c)); });
    });
    return d;
  }
  function section(title, values, box) {
    box.appendChild(el('h3', null, title));
    var t = el('div', { class: 'tree', 'data-section': title.toLowerCase() });
    if (!values.length) t.appendChild(el('div', { class: 'hint' }, '(none)'));
    values.forEach(function (v) { t.appendChild(tree(v.label, v.value)); });
    box.appendChild(t);
  }

  function select(seq) {
    selectedSeq = seq;
    var h = hits.filter(function (x) { return x.seq === seq; })[0];
    var box = document.getElementById('details');
    box.textContent = '';
    if (!h) return;
    box.appendChild(el('h2', null, 'hit ' + h.seq + ' · ' + h.breakpoint.name));
    box.appendChild(el('div', { class: 'kv' }, offset(h.t) + ' · ' + h.wall + ' · goroutine ' + h.goroutine.id + ' · thread ' + h.thread + ' · stopped ' + h.stoppedMs + ' ms'));
    box.appendChild(el('div', { class: 'mono', id: 'location' }, h.location.function + '  ' + h.location.file + ':' + h.location.line));
    box.appendChild(el('h3', null, 'Stack'));
    var ol = el('ol', { start: '0' });
    h.stack.forEach(function (f) { ol.appendChild(el('li', { title: f.file + ':' + f.line }, shortFn(f.function) + '  ' + base(f.file) + ':' + f.line)); });
    box.appendChild(ol);
    section('Arguments', h.args.map(function (v) { return { label: v.name, value: v }; }), box);
    section('Locals', h.locals.map(function (v) { return { label: v.name, value: v }; }), box);
    section('Expressions', h.expressions.map(function (e) {
      return { label: e.expr, value: e.value || { name: e.expr, type: '', kind: 'invalid', error: e.error || 'no value' } };
    }), box);
    renderTimeline();
    renderTable();
  }

  function update() {
    var m = matcher(document.getElementById('filter').value);
    visible = hits.filter(function (h) { return !hiddenGoroutines[h.goroutine.id] && m(h); });
    renderTimeline();
    renderTable();
  }

  renderMeta();
  renderGoroutineToggles();
  document.getElementById('filter').value = data.filter || '';
  document.getElementById('filter').addEventListener('input', update);
  Array.prototype.forEach.call(document.querySelectorAll('input[name=lanes]'), function (r) {
    r.addEventListener('change', function () { lanesBy = r.value; renderTimeline(); });
  });
  update();
  document.body.setAttribute('data-ready', 'true');
})();
`;
