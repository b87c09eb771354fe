/**
 * The terminal side of the filter language (filter.ts): which hits of an open recording match. Terms on
 * names are decided from the metadata index alone; terms on recorded values read a hit's line only when the
 * names did not decide, and a bare word first checks the raw line for the word before parsing it.
 */
import { usageError } from '../errors.js';
import type { HitRecord, RecordingHeader } from '../recording/format.js';
import type { HitMeta } from '../recording/hitMeta.js';
import type { RecordingFile } from '../recording/reader.js';
import { type CompiledFilter, compileFilter, type FilterSubject } from './filter.js';
import { expressionInline } from './render.js';

/** Recorded values are compared in their inline form up to this length (strings are rarely longer). */
export const MATCH_TEXT_MAX = 2048;

/** Every expression the session's breakpoints record, in header order, each once. */
export function recordedExpressions(header: RecordingHeader): string[] {
  const out: string[] = [];
  for (const b of header.breakpoints) for (const e of b.expressions) if (!out.includes(e)) out.push(e);
  return out;
}

/** Compiles `--filter` texts against the session's recorded expressions; a mistake is a usage error. */
export function parseFilter(header: RecordingHeader, texts: readonly string[]): CompiledFilter | undefined {
  if (texts.length === 0 || texts.every((t) => t.trim() === '')) return undefined;
  const parsed = compileFilter(recordedExpressions(header), texts);
  if (!parsed.ok) throw usageError(parsed.message, { hint: parsed.hint });
  return parsed.filter;
}

/** A hit's inline expression texts by expression (what `EXPR=…` and bare words compare). */
export function expressionTexts(hit: HitRecord): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of hit.expressions) out.set(e.expr, expressionInline(e, MATCH_TEXT_MAX));
  return out;
}

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Filters hits of one recording, reusing what it reads. */
export class HitMatcher {
  private readonly meta: HitMeta;
  private readonly needles = new Map<string, RegExp>();
  /** Per breakpoint (index into meta.breakpoints): the expressions its header entry records. */
  private readonly recorded: Array<Set<string>>;

  constructor(
    private readonly session: RecordingFile,
    readonly filter: CompiledFilter | undefined,
  ) {
    this.meta = session.meta();
    this.recorded = this.meta.breakpoints.map((b) => {
      const declared = session.header.breakpoints.find((d) => d.name === b.name);
      return new Set(declared?.expressions ?? []);
    });
  }

  /**
   * Whether hit `index` matches. `onHit` receives the parsed hit when matching had to read it, so a caller
   * that needs the hit anyway does not read it twice.
   */
  matches(index: number, onHit?: (hit: HitRecord) => void): boolean {
    const filter = this.filter;
    if (!filter) return true;
    const meta = this.meta;
    const session = this.session;
    let raw: string | undefined;
    let hit: HitRecord | undefined;
    let texts: Map<string, string> | undefined;
    const load = () => {
      if (!hit) {
        raw ??= session.hitTextAt(index);
        hit = session.parseHitText(index, raw);
        onHit?.(hit);
      }
      texts ??= expressionTexts(hit);
      return texts;
    };
    const recorded = this.recorded[meta.breakpoint[index] ?? 0];
    // A breakpoint the header says records nothing (or not this expression) needs no read of its hit; a
    // breakpoint missing from the header is read.
    const declared = recorded !== undefined && session.header.breakpoints.length > 0;
    const bp = meta.breakpoints[meta.breakpoint[index] ?? 0] ?? { id: 0, name: '', set: '' };
    const loc = meta.locations[meta.location[index] ?? 0] ?? { function: '', file: '', line: 0 };
    const subject: FilterSubject = {
      seq: meta.seq[index] ?? 0,
      goroutine: meta.goroutine[index] ?? 0,
      breakpoint: bp,
      location: loc,
      // Not in the metadata index: read from the hit, only when a term asks for it.
      get process() {
        load();
        return hit?.process;
      },
      expr: (e) => (declared && !recorded.has(e) ? undefined : load().get(e)),
      exprTexts: () => (declared && recorded.size === 0 ? [] : [...load().values()]),
      records: (e) => !declared || recorded.has(e),
      mayContain: (needle) => {
        if (hit) return true;
        raw ??= session.hitTextAt(index);
        let re = this.needles.get(needle);
        if (!re) {
          re = new RegExp(escapeRe(needle), 'iu');
          this.needles.set(needle, re);
        }
        return re.test(raw);
      },
    };
    return filter.test(subject);
  }
}

/** Indices (file order) of the hits that match `filter` (all hits without one). */
export function selectHits(session: RecordingFile, filter: CompiledFilter | undefined): number[] {
  const out: number[] = [];
  const matcher = new HitMatcher(session, filter);
  for (let i = 0; i < session.hitCount; i++) if (matcher.matches(i)) out.push(i);
  return out;
}

/** The filter as the views name it: `"a" and "b"`. */
export function describeFilter(texts: readonly string[]): string {
  return texts.map((f) => JSON.stringify(f)).join(' and ');
}
