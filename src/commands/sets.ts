/**
 * `ctrdbg sets list` and `ctrdbg sets show NAME`: the breakpoint sets ctrdbg knows, built-in and the user's.
 * (`sets check TARGET` resolves them on a node; it lives with the attach flow and calls `checkSets`.)
 */
import { relative } from 'node:path';
import { type BreakpointSet, findBreakpointSet, loadBreakpointSets } from '../breakpoints/sets.js';
import { projectRoot } from '../config.js';
import { formatTable, style } from '../util/output.js';
import type { CommandOutput } from './output.js';

export interface SetsOptions {
  setsDir?: string;
}

export interface SetSummary {
  name: string;
  description: string;
  process: string;
  entries: number;
  candidates: number;
  builtin: boolean;
  source: string;
}

function summary(set: BreakpointSet): SetSummary {
  return {
    name: set.name,
    description: set.description,
    process: set.process,
    entries: set.entries.length,
    candidates: set.entries.reduce((n, e) => n + e.candidates.length, 0),
    builtin: set.builtin,
    source: set.source,
  };
}

function shortPath(file: string): string {
  const rel = relative(projectRoot, file);
  return rel.startsWith('..') ? file : rel;
}

export async function listSets(options: SetsOptions = {}): Promise<CommandOutput<{ sets: SetSummary[] }>> {
  const sets = loadBreakpointSets({ setsDir: options.setsDir }).map(summary);
  const rows = [
    ['NAME', 'ENTRIES', 'ORIGIN', 'DESCRIPTION'].map((h) => style.bold(h)),
    ...sets.map((s) => [
      s.name,
      String(s.entries),
      s.builtin ? 'built-in' : shortPath(s.source),
      firstSentence(s.description),
    ]),
  ];
  return { data: { sets }, text: formatTable(rows) };
}

export async function showSet(
  name: string,
  options: SetsOptions = {},
): Promise<CommandOutput<{ set: BreakpointSet }>> {
  const set = findBreakpointSet(loadBreakpointSets({ setsDir: options.setsDir }), name);
  const lines: string[] = [
    `${style.bold(set.name)}  ${style.dim(shortPath(set.source))}`,
    set.description.trim(),
    `process: ${set.process}`,
    '',
  ];
  for (const entry of set.entries) {
    lines.push(`${style.cyan(entry.name)}${entry.description ? `  ${style.dim(entry.description)}` : ''}`);
    lines.push('  candidates (every one found in the binary is armed):');
    for (const c of entry.candidates) lines.push(`    ${c}`);
    if (entry.at === 'return')
      lines.push(`  at: return${entry.onlyFailures ? ' — only the returns with a non-nil error' : ''}`);
    if (entry.at === 'after-call') {
      lines.push('  at: after-call — where the function goes on after its first call to:');
      for (const c of entry.after ?? []) lines.push(`    ${c}`);
    }
    if (entry.lineOffset) lines.push(`  lineOffset: ${entry.lineOffset}`);
    if (entry.condition) lines.push(`  condition: ${entry.condition}`);
    if (entry.params.length) lines.push(`  params: ${entry.params.join(', ')}`);
    if (entry.record.length) lines.push(`  record: ${entry.record.join(', ')}`);
    lines.push(
      `  loadArgs: ${describeLoad(entry.loadArgs)}   loadLocals: ${describeLoad(entry.loadLocals)}${entry.at === 'return' ? `   loadResults: ${describeLoad(entry.loadResults ?? false, 'depth 1, strings ≤256 B, ≤16 elements')}` : ''}   stack: ${entry.stack}`,
    );
    if (entry.redact.length) lines.push(`  redact: ${entry.redact.join(', ')}`);
    if (entry.versions)
      lines.push(`  versions: containerd ${entry.versions} (elsewhere: not in this version)`);
    lines.push('');
  }
  return { data: { set }, text: lines.join('\n').trimEnd() };
}

function describeLoad(config: BreakpointSet['entries'][number]['loadArgs'], none = 'no'): string {
  if (config === false) return none;
  return `depth ${config.depth}, strings ≤${config.maxString} B, ≤${config.maxArray} elements`;
}

function firstSentence(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const end = flat.search(/[.:](\s|$)/);
  return end > 0 ? flat.slice(0, end) : flat;
}
