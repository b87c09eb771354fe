/**
 * The HTML timeline's stylesheet and page script (plain ES2020 in strings: the page must be one file with no
 * network). The script runs after render.ts's and filter.ts's functions, which htmlReport.ts serialises in
 * front of it: valueText, displayChildren, hitSections, compileFilter, … are the terminal's own.
 *
 * Scale: the timeline is one canvas, binned per pixel column (a density view), so 100,000 hits draw in a
 * few milliseconds; the table renders only the rows in view; a hit's full record is inflated from its
 * gzip chunk when it is opened. Every recorded string is set with textContent, never parsed as HTML.
 */

export const PAGE_CSS = `
:root { --fg:#1d2330; --muted:#667085; --line:#d0d5dd; --bg:#fff; --sel:#fff3c4; --row:24px; font-family: system-ui, sans-serif; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:var(--bg); font-size:14px; }
header { padding:8px 16px; border-bottom:1px solid var(--line); display:flex; gap:24px; align-items:baseline; flex-wrap:wrap; }
h1 { font-size:18px; margin:0; }
#meta { color:var(--muted); }
#controls { padding:8px 16px; display:flex; gap:12px; align-items:center; flex-wrap:wrap; border-bottom:1px solid var(--line); }
#controls .filter input { width:min(640px, 60vw); font-family: ui-monospace, monospace; }
#filter-help { flex-basis:100%; margin:4px 0 0; font-size:12px; background:#f9fafb; border:1px solid var(--line); padding:8px; }
#timeline-box { padding:6px 16px 10px; border-bottom:1px solid var(--line); }
#timeline-controls { display:flex; gap:14px; align-items:center; flex-wrap:wrap; margin-bottom:6px; font-size:13px; }
#timeline { display:flex; align-items:flex-start; }
#lane-labels { width:240px; flex:none; padding-top:22px; font-size:12px; }
.lane-label { height:22px; line-height:22px; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; padding-right:8px; cursor:pointer; }
.lane-label .lane-count { color:var(--muted); margin-left:6px; }
.lane-label .swatch { display:inline-block; width:9px; height:9px; border-radius:2px; margin-right:5px; vertical-align:middle; }
.lane-label.others { color:var(--muted); font-style:italic; }
#canvas-box { position:relative; flex:1; min-width:300px; }
#density { display:block; width:100%; cursor:crosshair; }
#density.dragging { cursor:grabbing; }
#tooltip { position:absolute; pointer-events:none; background:#1d2330; color:#fff; font-size:12px; padding:3px 6px; border-radius:3px; white-space:nowrap; }
main { display:grid; grid-template-columns:minmax(0, 1.7fr) minmax(340px, 1fr); gap:16px; padding:8px 16px 16px; }
#list-box { height:min(62vh, 640px); overflow:auto; border:1px solid var(--line); outline:none; }
#hits { position:relative; min-width:100%; width:max-content; font-size:13px; }
#hits .row { display:grid; grid-template-columns:var(--cols); height:var(--row); line-height:var(--row); border-bottom:1px solid #eaecf0; cursor:pointer; }
#hits .row > span { padding:0 6px; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
#hits .row.head { position:sticky; top:0; z-index:1; background:#f9fafb; font-weight:600; cursor:default; border-bottom:1px solid var(--line); }
#hits-body { position:relative; }
#hits-body .row { position:absolute; left:0; right:0; }
#hits-body .row:hover { background:#f2f4f7; }
#hits-body .row.selected { background:var(--sel); }
#hits .num { text-align:right; }
#hits .value { font-family: ui-monospace, monospace; font-size:12px; }
#details { font-size:13px; min-width:0; }
#details h2 { font-size:16px; margin:4px 0 6px; }
#details h3 { font-size:14px; margin:12px 0 4px; }
#details .kv { color:var(--muted); }
#details .cli { color:var(--muted); font-size:12px; margin-top:4px; }
.mono, #details .tree, #details ol, #details code { font-family: ui-monospace, monospace; }
#details .mono, #details .cli { overflow-wrap:anywhere; }
#details ol { margin:0; padding-left:28px; }
.tree { overflow-wrap:anywhere; }
.tree details { margin-left:14px; }
.tree > details, .tree > .leaf { margin-left:0; }
.tree .leaf { margin-left:14px; }
.tree summary { cursor:pointer; }
details.section > summary { cursor:pointer; font-weight:600; margin:12px 0 4px; }
.type { color:var(--muted); }
.err { color:#b42318; }
.redacted { color:#b54708; }
.hint { color:var(--muted); }
button { font:inherit; padding:0 8px; }
`;

// Plain JavaScript (no template literals: this file's own template literal holds it).
export const PAGE_SCRIPT = `
var data = JSON.parse(document.getElementById('session-data').textContent);
var summary = data.summary;
var N = data.seq.length;
var T = Float64Array.from(data.t);
var palette = ['#2e90fa','#f04438','#12b76a','#f79009','#7a5af8','#ee46bc','#06aed4','#669f2a','#dd2590','#4e5ba6','#b54708','#0e9384'];
var LANE_H = 22, AXIS_H = 22;
var $ = function (id) { return document.getElementById(id); };

// ---- per-hit values: hit i's expressions are values[valueOffset[i] …] in its breakpoint's order --------
var valueOffset = new Int32Array(N + 1);
for (var i = 0; i < N; i++) valueOffset[i + 1] = valueOffset[i] + data.breakpoints[data.breakpoint[i]].expressions.length;
var exprIndex = {};
data.expressions.forEach(function (e, k) { exprIndex[e] = k; });
data.breakpoints.forEach(function (b) {
  b.posOf = {};
  b.expressions.forEach(function (k, pos) { b.posOf[k] = pos; });
});
function exprText(i, k) {
  var pos = data.breakpoints[data.breakpoint[i]].posOf[k];
  if (pos === undefined) return undefined;
  var v = data.values[valueOffset[i] + pos];
  return v < 0 ? undefined : data.dict[v];
}
function processOf(i) {
  if (!data.process) return undefined;
  var p = data.process[i];
  return p < 0 ? undefined : data.processes[p];
}
/** The filter language's view of hit i (filter.ts FilterSubject). */
function subject(i) {
  return {
    seq: data.seq[i],
    goroutine: data.goroutine[i],
    breakpoint: data.breakpoints[data.breakpoint[i]],
    location: data.locations[data.location[i]],
    process: processOf(i),
    expr: function (name) { var k = exprIndex[name]; return k === undefined ? undefined : exprText(i, k); },
    exprTexts: function () {
      var out = [], from = valueOffset[i], to = valueOffset[i + 1];
      for (var j = from; j < to; j++) if (data.values[j] >= 0) out.push(data.dict[data.values[j]]);
      return out;
    },
  };
}

function offset(ms) {
  if (ms < 1000) return '+' + ms.toFixed(1) + 'ms';
  if (ms < 60000) return '+' + (ms / 1000).toFixed(3) + 's';
  var m = Math.floor(ms / 60000);
  return '+' + m + 'm' + ((ms - m * 60000) / 1000).toFixed(3) + 's';
}
function span(ms) {
  if (ms < 1) return ms.toFixed(3) + ' ms';
  if (ms < 1000) return ms.toFixed(1) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}
function el(tag, attrs, text) {
  var node = document.createElement(tag);
  if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- state ------------------------------------------------------------------------------------------
var visible = new Int32Array(0);   // matching hit indices, file order
var positionOf = new Int32Array(N).fill(-1);
var selected = -1;
var laneMode = 'breakpoint';
var lanes = [];
var t0 = N ? T[0] : 0, t1 = N ? T[N - 1] : 1;
if (t1 <= t0) t1 = t0 + 1;
var pad = (t1 - t0) * 0.02;
var full = { from: t0 - pad, to: t1 + pad };
var view = { from: full.from, to: full.to };

// ---- filter -------------------------------------------------------------------------------------------
function applyFilter(text) {
  var parsed = compileFilter(data.expressions, [text]);
  if (!parsed.ok) {
    $('filter-error').textContent = parsed.message;
    $('filter-error').title = parsed.hint;
    return;
  }
  $('filter-error').textContent = '';
  var f = text.trim() === '' ? null : parsed.filter;
  var out = new Int32Array(N), n = 0;
  for (var i = 0; i < N; i++) if (!f || f.test(subject(i))) out[n++] = i;
  visible = out.slice(0, n);
  positionOf.fill(-1);
  for (var p = 0; p < n; p++) positionOf[visible[p]] = p;
  $('count').textContent = n + ' of ' + N + ' hits' + (n === 0 && f ? ': nothing matches (a bare word searches names and recorded values)' : '');
  buildLanes();
  buildColumns();
  renderRows(true);
  draw();
}

// ---- lanes: one kind of grouping each; a later grouping only adds an entry here ---------------------
var laneKinds = {
  breakpoint: {
    key: function (i) { return data.breakpoint[i]; },
    name: function (k) { return data.breakpoints[k].name; },
    declaredOrder: true,
    noun: 'breakpoints',
  },
  goroutine: {
    key: function (i) { return data.goroutine[i]; },
    name: function (k) { return 'g' + k; },
    declaredOrder: false,
    noun: 'goroutines',
  },
  process: {
    key: function (i) { return data.process ? data.process[i] : -1; },
    name: function (k) { return k < 0 ? '(no process)' : data.processes[k].pid + ' ' + baseName(data.processes[k].binary); },
    declaredOrder: false,
    noun: 'processes',
  },
};
function buildLanes() {
  var kind = laneKinds[laneMode];
  var limit = Number($('lane-count').value) || 12;
  var search = $('lane-search').value.trim().toLowerCase();
  var counts = new Map();
  for (var p = 0; p < visible.length; p++) {
    var k = kind.key(visible[p]);
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  var keys = Array.from(counts.keys()).filter(function (k) { return !search || kind.name(k).toLowerCase().indexOf(search) >= 0; });
  keys.sort(kind.declaredOrder ? function (a, b) { return a - b; } : function (a, b) { return counts.get(b) - counts.get(a) || a - b; });
  var shown = keys.slice(0, limit);
  var laneOf = new Map();
  lanes = shown.map(function (k, r) {
    laneOf.set(k, r);
    return { key: k, label: kind.name(k), count: counts.get(k), hits: [], color: palette[(kind.declaredOrder ? k : r) % palette.length] };
  });
  var others = { key: null, label: '', count: 0, hits: [], color: '#98a2b3', others: true };
  for (var q = 0; q < visible.length; q++) {
    var i = visible[q];
    var r = laneOf.get(kind.key(i));
    if (r === undefined) others.hits.push(i); else lanes[r].hits.push(i);
  }
  var hidden = counts.size - shown.length;
  if (others.hits.length) {
    others.count = others.hits.length;
    others.label = '+ ' + hidden + ' more ' + kind.noun;
    lanes.push(others);
  }
  lanes.forEach(function (lane) {
    lane.hits = Int32Array.from(lane.hits);
    // File order is time order; keep the binary searches right if a file breaks that.
    for (var j = 1; j < lane.hits.length; j++) if (T[lane.hits[j]] < T[lane.hits[j - 1]]) {
      lane.hits.sort(function (a, b) { return T[a] - T[b]; });
      break;
    }
  });
  var box = $('lane-labels');
  box.textContent = '';
  lanes.forEach(function (lane) {
    var div = el('div', { class: 'lane-label' + (lane.others ? ' others' : ''), title: lane.label + ' (' + lane.count + ' hits)' });
    var sw = el('span', { class: 'swatch' });
    sw.style.background = lane.color;
    div.appendChild(sw);
    div.appendChild(el('span', { class: 'lane-name' }, lane.label));
    div.appendChild(el('span', { class: 'lane-count' }, String(lane.count)));
    if (!lane.others) div.addEventListener('click', function () { laneFilter(lane); });
    box.appendChild(div);
  });
  if (!lanes.length) box.appendChild(el('div', { class: 'lane-label others' }, search ? 'no lane matches "' + search + '"' : 'no hits'));
}

/** A click on a lane's label narrows the filter to that lane (again: back to all). */
function laneFilter(lane) {
  var term = laneMode === 'breakpoint' ? 'bp=' + lane.label : laneMode === 'goroutine' ? 'g=' + data.goroutine[lane.hits[0]] : 'process=' + (data.processes[lane.key] ? data.processes[lane.key].pid : '');
  var box = $('filter');
  box.value = box.value.trim() === term ? '' : term;
  applyFilter(box.value);
}

// ---- the density canvas ---------------------------------------------------------------------------
var canvas = $('density');
var g2 = canvas.getContext('2d');
var width = 0;
function lowerBound(arr, t) {
  var lo = 0, hi = arr.length;
  while (lo < hi) { var mid = (lo + hi) >> 1; if (T[arr[mid]] < t) lo = mid + 1; else hi = mid; }
  return lo;
}
function xOf(t) { return (t - view.from) / (view.to - view.from) * width; }
function tOf(x) { return view.from + x / width * (view.to - view.from); }
function niceStep(range, ticks) {
  var raw = range / ticks, p = Math.pow(10, Math.floor(Math.log10(raw)));
  var steps = [1, 2, 5, 10];
  for (var s = 0; s < steps.length; s++) if (steps[s] * p >= raw) return steps[s] * p;
  return 10 * p;
}
function draw() {
  var rows = Math.max(1, lanes.length);
  var ratio = window.devicePixelRatio || 1;
  width = Math.max(300, canvas.parentElement.clientWidth);
  var height = AXIS_H + rows * LANE_H + 4;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = height + 'px';
  g2.setTransform(ratio, 0, 0, ratio, 0, 0);
  g2.clearRect(0, 0, width, height);
  g2.font = '11px system-ui, sans-serif';
  g2.fillStyle = '#667085';
  g2.strokeStyle = '#eaecf0';
  var step = niceStep(view.to - view.from, Math.max(2, Math.floor(width / 110)));
  for (var tick = Math.ceil(view.from / step) * step; tick <= view.to; tick += step) {
    var x = Math.round(xOf(tick)) + 0.5;
    g2.beginPath(); g2.moveTo(x, AXIS_H - 4); g2.lineTo(x, height); g2.stroke();
    g2.fillText(offset(tick), x + 3, 12);
  }
  var drawn = 0;
  var bins = new Uint32Array(Math.ceil(width) + 1);
  lanes.forEach(function (lane, r) {
    var y = AXIS_H + r * LANE_H;
    if (r % 2 === 1) { g2.fillStyle = '#f9fafb'; g2.fillRect(0, y, width, LANE_H); }
    var lo = lowerBound(lane.hits, view.from), hi = lowerBound(lane.hits, view.to + 1e-9);
    while (hi < lane.hits.length && T[lane.hits[hi]] <= view.to) hi++;
    bins.fill(0);
    var max = 0;
    for (var j = lo; j < hi; j++) {
      var px = Math.floor(xOf(T[lane.hits[j]]));
      if (px >= 0 && px < bins.length) { var c = ++bins[px]; if (c > max) max = c; }
    }
    drawn += hi - lo;
    g2.fillStyle = lane.color;
    var sparse = max <= 1 && hi - lo < width / 3;
    var logMax = Math.log(1 + max);
    for (var b = 0; b < bins.length; b++) {
      var count = bins[b];
      if (!count) continue;
      if (sparse) { g2.globalAlpha = 1; g2.fillRect(b - 1, y + 4, 3, LANE_H - 8); continue; }
      // Density: every pixel column with a hit is visible; busier columns are darker and taller.
      var share = logMax > 0 ? Math.log(1 + count) / logMax : 1;
      g2.globalAlpha = 0.35 + 0.65 * share;
      var h = Math.max(4, Math.round((LANE_H - 6) * (0.4 + 0.6 * share)));
      g2.fillRect(b, y + (LANE_H - h) / 2, 1, h);
    }
    g2.globalAlpha = 1;
  });
  if (selected >= 0) {
    var sx = Math.round(xOf(T[selected])) + 0.5;
    if (sx >= 0 && sx <= width) {
      g2.strokeStyle = '#101828'; g2.lineWidth = 1;
      g2.beginPath(); g2.moveTo(sx, AXIS_H - 2); g2.lineTo(sx, height); g2.stroke();
      var lr = laneRowOf(selected);
      if (lr >= 0) { g2.lineWidth = 2; g2.strokeRect(sx - 3.5, AXIS_H + lr * LANE_H + 2, 7, LANE_H - 4); g2.lineWidth = 1; }
    }
  }
  canvas.dataset.drawn = String(drawn);
  canvas.dataset.lanes = String(lanes.length);
  $('window').textContent = offset(Math.max(0, view.from)) + ' … ' + offset(view.to) + ' (' + span(view.to - view.from) + ')';
}
function laneRowOf(i) {
  for (var r = 0; r < lanes.length; r++) {
    var hits = lanes[r].hits, at = lowerBound(hits, T[i]);
    for (var j = at; j < hits.length && T[hits[j]] === T[i]; j++) if (hits[j] === i) return r;
  }
  return -1;
}
/** The hit nearest to canvas point (x, y) within a few pixels, or -1. */
function hitAtPoint(x, y) {
  var r = Math.floor((y - AXIS_H) / LANE_H);
  var lane = lanes[r];
  if (!lane || !lane.hits.length) return -1;
  var t = tOf(x), at = lowerBound(lane.hits, t), best = -1, bestDx = 6;
  for (var j = Math.max(0, at - 2); j < Math.min(lane.hits.length, at + 2); j++) {
    var dx = Math.abs(xOf(T[lane.hits[j]]) - x);
    if (dx <= bestDx) { bestDx = dx; best = lane.hits[j]; }
  }
  return best;
}
/** Where hit seq is drawn, for tests and keyboard users (canvas coordinates), or null. */
window.ctrdbgTimeline = {
  pointOf: function (seq) {
    var i = data.seq.indexOf(seq);
    if (i < 0) return null;
    var r = laneRowOf(i);
    return r < 0 ? null : { x: xOf(T[i]), y: AXIS_H + r * LANE_H + LANE_H / 2 };
  },
  view: function () { return { from: view.from, to: view.to }; },
};
function zoom(factor, atX) {
  var at = tOf(atX === undefined ? width / 2 : atX);
  var range = Math.min(full.to - full.from, Math.max(0.01, (view.to - view.from) * factor));
  var from = at - (at - view.from) * (range / (view.to - view.from));
  setView(from, from + range);
}
function setView(from, to) {
  var range = to - from;
  if (from < full.from) { from = full.from; to = from + range; }
  if (to > full.to) { to = full.to; from = Math.max(full.from, to - range); }
  view.from = from; view.to = to;
  draw();
}
var drag = null;
canvas.addEventListener('wheel', function (e) {
  e.preventDefault();
  var rect = canvas.getBoundingClientRect();
  zoom(Math.exp(e.deltaY * 0.0015), e.clientX - rect.left);
}, { passive: false });
canvas.addEventListener('mousedown', function (e) {
  drag = { x: e.clientX, from: view.from, to: view.to, moved: false };
});
window.addEventListener('mousemove', function (e) {
  var rect = canvas.getBoundingClientRect();
  if (drag) {
    var dx = e.clientX - drag.x;
    if (Math.abs(dx) > 3) { drag.moved = true; canvas.classList.add('dragging'); }
    if (drag.moved) {
      var dt = dx / width * (drag.to - drag.from);
      setView(drag.from - dt, drag.to - dt);
    }
    return;
  }
  var x = e.clientX - rect.left, y = e.clientY - rect.top, tip = $('tooltip');
  if (x < 0 || y < 0 || x > rect.width || y > rect.height) { tip.hidden = true; return; }
  var i = hitAtPoint(x, y);
  if (i < 0) { tip.hidden = true; return; }
  tip.hidden = false;
  tip.textContent = '#' + data.seq[i] + ' ' + data.breakpoints[data.breakpoint[i]].name + ' g' + data.goroutine[i] + ' ' + offset(T[i]);
  tip.style.left = Math.min(x + 12, rect.width - 260) + 'px';
  tip.style.top = (y + 14) + 'px';
});
window.addEventListener('mouseup', function (e) {
  if (!drag) return;
  var moved = drag.moved;
  drag = null;
  canvas.classList.remove('dragging');
  if (moved) return;
  var rect = canvas.getBoundingClientRect();
  var i = hitAtPoint(e.clientX - rect.left, e.clientY - rect.top);
  if (i >= 0) select(i, true);
});
canvas.addEventListener('dblclick', function (e) {
  var rect = canvas.getBoundingClientRect();
  zoom(0.5, e.clientX - rect.left);
});
$('zoom-in').addEventListener('click', function () { zoom(0.5); });
$('zoom-out').addEventListener('click', function () { zoom(2); });
$('zoom-fit').addEventListener('click', function () { setView(full.from, full.to); });
window.addEventListener('resize', function () { draw(); renderRows(false); });

// ---- the virtualised table ----------------------------------------------------------------------
var ROW_H = 24;
var columns = [];
function buildColumns() {
  var present = {};
  for (var p = 0; p < visible.length; p++) present[data.breakpoint[visible[p]]] = true;
  var exprs = [];
  data.breakpoints.forEach(function (b, k) {
    if (!present[k]) return;
    b.expressions.forEach(function (e) { if (exprs.indexOf(e) < 0) exprs.push(e); });
  });
  columns = [
    { title: '#', cls: 'num', width: '64px', text: function (i) { return String(data.seq[i]); } },
    { title: 'time', width: '100px', text: function (i) { return offset(T[i]); } },
    { title: 'breakpoint', width: 'minmax(150px, 220px)', text: function (i) { return data.breakpoints[data.breakpoint[i]].name; } },
    { title: 'goroutine', width: '88px', text: function (i) { return 'g' + data.goroutine[i]; } },
  ];
  var bps = Object.keys(present).length;
  if (bps > 1 && exprs.length > 4) {
    // Hits of several breakpoints record different expressions: one column of expr=value pairs keeps every
    // value in view; one breakpoint (click its lane) gets a column per expression.
    columns.push({ title: 'recorded (click a breakpoint lane for a column per expression)', cls: 'value', width: 'minmax(360px, 1fr)', text: function (i) {
      var b = data.breakpoints[data.breakpoint[i]];
      return b.expressions.map(function (k) { var v = exprText(i, k); return data.expressions[k] + '=' + (v === undefined ? '?' : v); }).join('  ');
    } });
  } else {
    exprs.forEach(function (k) {
      columns.push({ title: data.expressions[k], cls: 'value', width: 'minmax(130px, 1fr)', text: function (i) { var v = exprText(i, k); return v === undefined ? '' : v; } });
    });
  }
  columns.push({ title: 'stopped', cls: 'num', width: '72px', text: function (i) { return data.stoppedMs[i] + ' ms'; } });
  columns.push({ title: 'where', width: 'minmax(180px, 260px)', text: function (i) { var l = data.locations[data.location[i]]; return shortFunction(l.function) + ':' + l.line; } });
  $('hits').style.setProperty('--cols', columns.map(function (c) { return c.width; }).join(' '));
  var head = $('hits-head');
  head.textContent = '';
  columns.forEach(function (c) { head.appendChild(el('span', { class: c.cls || '', title: c.title, role: 'columnheader' }, c.title)); });
}
var rendered = { from: -1, to: -1 };
function renderRows(reset) {
  var body = $('hits-body'), box = $('list-box');
  body.style.height = (visible.length * ROW_H) + 'px';
  var top = Math.max(0, box.scrollTop - ROW_H);
  var from = Math.max(0, Math.floor(top / ROW_H) - 10);
  var to = Math.min(visible.length, from + Math.ceil(box.clientHeight / ROW_H) + 24);
  if (!reset && from === rendered.from && to === rendered.to) return;
  rendered = { from: from, to: to };
  body.textContent = '';
  var frag = document.createDocumentFragment();
  for (var p = from; p < to; p++) {
    var i = visible[p];
    var row = el('div', { class: 'row' + (i === selected ? ' selected' : ''), role: 'row', 'data-seq': String(data.seq[i]), 'data-index': String(i) });
    row.style.top = (p * ROW_H) + 'px';
    columns.forEach(function (c) {
      var text = c.text(i);
      var cell = el('span', { class: c.cls || '' }, text);
      if (c.cls === 'value' && text.length > 20) cell.title = text;
      row.appendChild(cell);
    });
    frag.appendChild(row);
  }
  body.appendChild(frag);
}
$('list-box').addEventListener('scroll', function () { renderRows(false); });
$('hits-body').addEventListener('click', function (e) {
  var row = e.target.closest('.row');
  if (row) select(Number(row.getAttribute('data-index')), false);
});
$('list-box').addEventListener('keydown', function (e) {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  e.preventDefault();
  var p = selected >= 0 ? positionOf[selected] : -1;
  var next = visible[Math.min(visible.length - 1, Math.max(0, p + (e.key === 'ArrowDown' ? 1 : -1)))];
  if (next !== undefined) select(next, true);
});
function scrollToRow(i) {
  var p = positionOf[i];
  if (p < 0) return;
  var box = $('list-box'), y = p * ROW_H;
  if (y < box.scrollTop + ROW_H || y > box.scrollTop + box.clientHeight - 2 * ROW_H) box.scrollTop = Math.max(0, y - box.clientHeight / 2);
}

// ---- a hit's detail -----------------------------------------------------------------------------
var chunkCache = new Map();
function inflate(k) {
  if (chunkCache.has(k)) return chunkCache.get(k);
  var bin = atob(data.chunks[k]), bytes = new Uint8Array(bin.length);
  for (var b = 0; b < bin.length; b++) bytes[b] = bin.charCodeAt(b);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  var promise = new Response(stream).text().then(function (text) { return JSON.parse(text); });
  chunkCache.set(k, promise);
  // A few chunks stay inflated: stepping through neighbours costs nothing, memory stays bounded.
  if (chunkCache.size > 16) chunkCache.delete(chunkCache.keys().next().value);
  return promise;
}
function hitAt(i) {
  return inflate(Math.floor(i / data.chunkHits)).then(function (hits) { return hits[i % data.chunkHits]; });
}
function line(label, v, parent) {
  parent.appendChild(el('span', { class: 'name' }, label));
  if (v.type) { parent.appendChild(document.createTextNode(' ')); parent.appendChild(el('span', { class: 'type' }, shortType(v.type))); }
  var text = valueText(v);
  if (text) {
    parent.appendChild(document.createTextNode(' = '));
    parent.appendChild(el('span', { class: v.redacted ? 'value redacted' : v.error !== undefined ? 'value err' : 'value' }, text));
  }
}
function tree(label, v) {
  var cs = displayChildren(v);
  if (!cs.length) { var leaf = el('div', { class: 'leaf' }); line(label, v, leaf); return leaf; }
  var d = el('details', { 'data-path': label });
  var s = el('summary');
  line(label, v, s);
  d.appendChild(s);
  d.addEventListener('toggle', function () {
    if (!d.open || d.dataset.filled) return;
    d.dataset.filled = '1';
    cs.forEach(function (c) { d.appendChild(tree(c.name, c)); });
  });
  return d;
}
var SECTION_TITLES = { expressions: 'Recorded expressions', results: 'Results', parameters: 'Parameters', receiver: 'Receiver', locals: 'Locals' };
function renderHit(box, h) {
  hitSections(h, []).forEach(function (section) {
    if ((section.id === 'receiver' || section.id === 'results') && !section.entries.length) return;
    var t = el('div', { class: 'tree', 'data-section': section.id });
    if (!section.entries.length) t.appendChild(el('div', { class: 'hint' }, '(none)'));
    section.entries.forEach(function (entry) {
      if (entry.value === undefined) {
        var leaf = el('div', { class: 'leaf' });
        leaf.appendChild(el('span', { class: 'name' }, entry.label));
        leaf.appendChild(document.createTextNode(' '));
        leaf.appendChild(el('span', { class: 'value err' }, '<error: ' + entry.error + '>'));
        t.appendChild(leaf);
      } else t.appendChild(tree(entry.label, entry.value));
    });
    if (section.id === 'receiver') {
      // The receiver (the service object) is rarely the question: collapsed until asked.
      var wrap = el('details', { class: 'section', 'data-section-box': 'receiver' });
      wrap.appendChild(el('summary', null, SECTION_TITLES.receiver + ' ' + section.entries[0].label + ' (' + (treeLines(section.entries[0].value) - 1) + ' lines)'));
      wrap.appendChild(t);
      box.appendChild(wrap);
    } else {
      box.appendChild(el('h3', null, SECTION_TITLES[section.id]));
      box.appendChild(t);
    }
  });
  box.appendChild(el('h3', null, 'Stack'));
  var ol = el('ol', { start: '0' });
  h.stack.forEach(function (f) { ol.appendChild(el('li', { title: f.file + ':' + f.line }, frameText(f))); });
  box.appendChild(ol);
}
var detailToken = 0;
function select(i, scroll) {
  selected = i;
  var box = $('details');
  box.textContent = '';
  box.setAttribute('data-seq', String(data.seq[i]));
  var bp = data.breakpoints[data.breakpoint[i]], loc = data.locations[data.location[i]];
  box.appendChild(el('h2', null, 'hit ' + data.seq[i] + ' · ' + bp.name));
  var p = processOf(i);
  box.appendChild(el('div', { class: 'kv' }, offset(T[i]) + ' · goroutine ' + data.goroutine[i] + (p ? ' · process ' + p.pid + ' ' + p.binary : '') + ' · stopped ' + data.stoppedMs[i] + ' ms'));
  box.appendChild(el('div', { class: 'mono', id: 'location' }, loc.function + '  ' + loc.file + ':' + loc.line));
  box.appendChild(el('div', { class: 'cli' }, 'ctrdbg replay ' + data.file + ' --goto ' + data.seq[i]));
  var token = ++detailToken;
  var pending = el('p', { class: 'hint' }, 'loading…');
  box.appendChild(pending);
  hitAt(i).then(function (h) {
    if (token !== detailToken) return;
    box.removeChild(pending);
    box.appendChild(el('div', { class: 'kv' }, h.wall + ' · thread ' + h.thread));
    renderHit(box, h);
    box.setAttribute('data-loaded', String(h.seq));
  }).catch(function (err) {
    if (token === detailToken) pending.textContent = 'could not read this hit: ' + err;
  });
  if (scroll) scrollToRow(i);
  renderRows(true);
  var visibleNow = T[i] >= view.from && T[i] <= view.to;
  if (!visibleNow) { var range = view.to - view.from; setView(T[i] - range / 2, T[i] + range / 2); } else draw();
}

// ---- start -------------------------------------------------------------------------------------------
(function start() {
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
  $('meta').textContent = parts.join(' · ');
  $('filter-help').textContent = data.filterHelp;
  $('filter-help-toggle').addEventListener('click', function () { $('filter-help').hidden = !$('filter-help').hidden; });
  if (data.process) $('lanes-process').hidden = false;
  var timer = null;
  $('filter').addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () { applyFilter($('filter').value); }, N > 20000 ? 150 : 0);
  });
  $('filter').addEventListener('keydown', function (e) {
    if (e.key === 'Enter') { clearTimeout(timer); applyFilter($('filter').value); if (visible.length) select(visible[0], true); }
  });
  Array.prototype.forEach.call(document.querySelectorAll('input[name=lanes]'), function (r) {
    r.addEventListener('change', function () { laneMode = r.value; buildLanes(); draw(); });
  });
  $('lane-count').addEventListener('change', function () { buildLanes(); draw(); });
  $('lane-search').addEventListener('input', function () { buildLanes(); draw(); });
  applyFilter('');
  document.body.setAttribute('data-ready', 'true');
})();
`;
