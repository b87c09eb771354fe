/**
 * Which containerd versions a breakpoint-set entry exists in (`versions: ">=2.0"`), so an entry that belongs
 * to another release line reads "not in this version" instead of a miss. Pure.
 */

export interface ContainerdRelease {
  major: number;
  minor: number;
  patch: number;
}

export interface Comparator {
  op: '>=' | '>' | '<=' | '<' | '=';
  version: ContainerdRelease;
  /** The comparator's version had no patch (`2.0`): `<2.0` means below 2.0.0, `=1.7` means any 1.7.x. */
  minorOnly: boolean;
}

/**
 * The release in a `containerd --version` line or a version string: "containerd github.com/containerd/containerd
 * 1.7.24~ds1 1.7.24~ds1-6+deb13u1" → 1.7.24, "v2.2.1" → 2.2.1, "1.7" → 1.7.0.
 */
export function parseRelease(text: string): ContainerdRelease | undefined {
  const m = /(?:^|[\s/v])v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) } : undefined;
}

/** `>=2.0`, `>=1.7 <2.0`, `=1.7`, `1.6` (same as `=1.6`) → comparators; undefined when malformed. */
export function parseVersionRange(range: string): Comparator[] | undefined {
  const parts = range.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return undefined;
  const out: Comparator[] = [];
  for (const part of parts) {
    const m = /^(>=|<=|>|<|=)?(\d+)\.(\d+)(?:\.(\d+))?$/.exec(part);
    if (!m) return undefined;
    out.push({
      op: (m[1] ?? '=') as Comparator['op'],
      version: { major: Number(m[2]), minor: Number(m[3]), patch: Number(m[4] ?? 0) },
      minorOnly: m[4] === undefined,
    });
  }
  return out;
}

function compare(a: ContainerdRelease, b: ContainerdRelease): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** True when `version` satisfies every comparator of `range`; an unreadable version or range counts as inside. */
export function inVersionRange(version: string, range: string): boolean {
  const v = parseRelease(version);
  const comparators = parseVersionRange(range);
  if (!v || !comparators) return true;
  return comparators.every((c) => {
    if (c.op === '=' && c.minorOnly) return v.major === c.version.major && v.minor === c.version.minor;
    const d = compare(v, c.version);
    switch (c.op) {
      case '>=':
        return d >= 0;
      case '>':
        // `>1.7` (no patch) means a later minor: 1.8 and up.
        return c.minorOnly
          ? v.major > c.version.major || (v.major === c.version.major && v.minor > c.version.minor)
          : d > 0;
      case '<=':
        return c.minorOnly
          ? v.major < c.version.major || (v.major === c.version.major && v.minor <= c.version.minor)
          : d <= 0;
      case '<':
        return d < 0;
      default:
        return d === 0;
    }
  });
}
