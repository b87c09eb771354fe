/**
 * Go versions and what a source tree asks of them. containerd's go.mod says which Go it needs (`go 1.24.3`,
 * and since Go 1.21 maybe `toolchain go1.24.3`); an older Go fails with messages that do not say so (Go 1.19
 * reading v2.2.1's go.mod prints only "go: errors parsing go.mod"). ctrdbg compares before it builds.
 * Everything here is pure.
 */

/** A Go version in Go's own order: `1.21` (the language) < `1.21rc1` < `1.21.0` < `1.21.1`. */
export interface GoVersion {
  major: number;
  minor: number;
  /** undefined for a language version (`1.21`) and for a pre-release. */
  patch: number | undefined;
  /** `rc2` → { kind: 'rc', n: 2 }; `beta1` → { kind: 'beta', n: 1 }. */
  pre: { kind: 'alpha' | 'beta' | 'rc'; n: number } | undefined;
  /** The text it was read from, without a leading `go`. */
  text: string;
}

/** `go1.24.4`, `1.24.3`, `1.21`, `go1.21rc2`, `go1.24.4 linux/amd64`, `devel go1.25-abc…` → a GoVersion. */
export function parseGoVersion(text: string): GoVersion | undefined {
  const match = /(?:^|\s|go)(\d+)\.(\d+)(?:\.(\d+)|(alpha|beta|rc)(\d+))?(?=$|[\s+-])/.exec(text.trim());
  if (!match) return undefined;
  const [, major, minor, patch, preKind, preN] = match;
  return {
    major: Number(major),
    minor: Number(minor),
    patch: patch === undefined ? undefined : Number(patch),
    pre: preKind ? { kind: preKind as 'alpha' | 'beta' | 'rc', n: Number(preN) } : undefined,
    text: match[0].trim().replace(/^go/, ''),
  };
}

const preRank = { alpha: 0, beta: 1, rc: 2 } as const;

/** Negative when a < b, 0 when equal, positive when a > b, in Go's order (see GoVersion). */
export function compareGoVersions(a: GoVersion, b: GoVersion): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  // Within one minor: language (1.21) < pre-releases (1.21rc1) < releases (1.21.0 …).
  const rank = (v: GoVersion) => (v.patch !== undefined ? 2 : v.pre ? 1 : 0);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (a.patch !== undefined && b.patch !== undefined) return a.patch - b.patch;
  if (a.pre && b.pre) return preRank[a.pre.kind] - preRank[b.pre.kind] || a.pre.n - b.pre.n;
  return 0;
}

export interface GoModRequirement {
  /** The `go` directive: the oldest Go that may build the module. */
  go: string | undefined;
  /** The `toolchain` directive (Go 1.21+): the Go the module suggests; not a minimum. */
  toolchain: string | undefined;
}

/** Reads the `go` and `toolchain` directives of a go.mod (comments and blocks tolerated). */
export function parseGoMod(text: string): GoModRequirement {
  let go: string | undefined;
  let toolchain: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    const directive = /^(go|toolchain)\s+(\S+)$/.exec(line);
    if (!directive) continue;
    if (directive[1] === 'go') go ??= directive[2];
    else toolchain ??= directive[2];
  }
  return { go, toolchain };
}

export interface GoCheck {
  /** The minimum (the `go` line), e.g. `1.24.3`; undefined when the tree states none. */
  needed: string | undefined;
  /** The suggested toolchain without its `go` prefix, when newer than `needed`. */
  suggested: string | undefined;
  found: string;
  /** false: the local Go is older than `needed` (the build would fail). */
  ok: boolean;
  /** true: ok, but older than the suggested toolchain (a warning). */
  belowSuggested: boolean;
}

/**
 * Compares a tree's requirement with the Go that will build it. An unreadable local version is taken as
 * sufficient (the build itself will say), an unreadable requirement as none.
 */
export function checkGoRequirement(requirement: GoModRequirement, localVersion: string): GoCheck {
  const local = parseGoVersion(localVersion);
  const needed = requirement.go ? parseGoVersion(requirement.go) : undefined;
  const suggestedVersion =
    requirement.toolchain && requirement.toolchain !== 'default'
      ? parseGoVersion(requirement.toolchain)
      : undefined;
  const suggested =
    suggestedVersion && (!needed || compareGoVersions(suggestedVersion, needed) > 0)
      ? suggestedVersion
      : undefined;
  const ok = !local || !needed || compareGoVersions(local, needed) >= 0;
  return {
    needed: needed?.text,
    suggested: suggested?.text,
    found: local ? `go${local.text}` : localVersion,
    ok,
    belowSuggested: ok && Boolean(local && suggested && compareGoVersions(local, suggested) < 0),
  };
}
