// Reads one JSON result per line on stdin, prints a table and writes them all to the file named by argv[2].
import { readFileSync, writeFileSync } from 'node:fs';

const suites = readFileSync(0, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const rows = [['suite', 'case', 'metric', 'value', 'anchor', 'ratio', 'goal', 'met']];
for (const s of suites) {
  for (const r of s.rows) {
    rows.push([
      s.suite,
      r.case,
      r.metric,
      `${r.value} ${r.unit}`,
      r.anchor ? `${r.anchor.name}: ${r.anchor.value} ${r.unit}` : '',
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`,
      r.goal ?? '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd());
// Where a suite measured something machine-bound (a browser's timings), it names the machine.
for (const s of suites) if (s.machine) console.log(`${s.suite}: ${s.machine}`);
writeFileSync(process.argv[2], `${JSON.stringify({ date: new Date().toISOString(), suites }, null, 2)}\n`);
console.log(`\nwritten: ${process.argv[2]}`);
