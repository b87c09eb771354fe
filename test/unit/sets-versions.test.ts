import { describe, expect, it } from 'vitest';
import { checkSets, type FunctionLocator, resolveSet } from '../../src/breakpoints/resolve.js';
import { parseBreakpointSet } from '../../src/breakpoints/sets.js';
import { inVersionRange, parseRelease, parseVersionRange } from '../../src/breakpoints/versions.js';
import type { Location } from '../../src/delve/types.js';

const P1 = 'github.com/containerd/containerd';
const P2 = 'github.com/containerd/containerd/v2';

function fakeBinary(functions: string[]): FunctionLocator {
  return {
    async listFunctions(filter: string) {
      const re = new RegExp(filter);
      return functions.filter((f) => re.test(f));
    },
    async findLocation(loc: string): Promise<Location[]> {
      if (!functions.includes(loc)) throw new Error(`location "${loc}" not found`);
      return [
        {
          pc: 1,
          file: '/src/x.go',
          line: 10,
          function: { name: loc, value: 1, type: 0, goType: 0, optimized: false },
          pcs: [1],
        },
      ];
    },
  };
}

const imagePull = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: image-pull
entries:
  - name: pull-image
    candidates:
      - ${P1}/pkg/cri/server.(*criService).PullImage
      - ${P2}/internal/cri/server/images.(*GRPCCRIImageService).PullImage
  - name: cri-image-service-pull
    candidates:
      - ${P2}/internal/cri/server/images.(*CRIImageService).PullImage
    versions: '>=2.0'
`);

const v17 = [`${P1}/pkg/cri/server.(*criService).PullImage`, `${P1}/services/tasks.(*local).Create`];

describe('containerd version ranges', () => {
  it('reads the release from version lines', () => {
    expect(
      parseRelease('containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1'),
    ).toEqual({
      major: 1,
      minor: 7,
      patch: 24,
    });
    expect(parseRelease('containerd github.com/containerd/containerd/v2 v2.2.1 dcf2847')).toEqual({
      major: 2,
      minor: 2,
      patch: 1,
    });
    expect(parseRelease('1.6')).toEqual({ major: 1, minor: 6, patch: 0 });
    expect(parseRelease('unknown')).toBeUndefined();
  });

  it('parses comparators and rejects anything else', () => {
    expect(parseVersionRange('>=1.7 <2.0')).toHaveLength(2);
    expect(parseVersionRange('1.6')).toEqual([
      { op: '=', version: { major: 1, minor: 6, patch: 0 }, minorOnly: true },
    ]);
    expect(parseVersionRange('~1.7')).toBeUndefined();
    expect(parseVersionRange('')).toBeUndefined();
  });

  it('matches versions against ranges', () => {
    expect(inVersionRange('1.7.24~ds1', '>=2.0')).toBe(false);
    expect(inVersionRange('v2.2.1', '>=2.0')).toBe(true);
    expect(inVersionRange('1.6.20~ds1', '>=1.7')).toBe(false);
    expect(inVersionRange('1.7.0', '>=1.7 <2.0')).toBe(true);
    expect(inVersionRange('2.0.0', '>=1.7 <2.0')).toBe(false);
    expect(inVersionRange('1.7.24', '=1.7')).toBe(true);
    expect(inVersionRange('1.8.0', '>1.7')).toBe(true);
    expect(inVersionRange('1.7.9', '>1.7')).toBe(false);
    expect(inVersionRange('1.7.9', '<=1.7')).toBe(true);
    // Unreadable: treated as inside, so a real miss is still reported as one.
    expect(inVersionRange('unknown', '>=2.0')).toBe(true);
  });

  it('rejects a malformed versions field when the set is loaded', () => {
    expect(() =>
      parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: bad
entries:
  - name: e
    candidates: [a.b]
    versions: 'two point oh'
`),
    ).toThrow(/6:15: must be comparators like .* \(at entries.0.versions\)/);
  });
});

describe('"not in this version"', () => {
  it('marks an entry of another release line instead of a miss, and the set stays complete', async () => {
    const result = await resolveSet(fakeBinary(v17), imagePull, {
      containerdVersion: 'containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1',
    });
    const [pull, criImage] = result.entries;
    expect(pull!.locations.map((l) => l.candidate)).toEqual([`${P1}/pkg/cri/server.(*criService).PullImage`]);
    expect(criImage).toMatchObject({ locations: [], notInVersion: '>=2.0', suggestions: [] });
    expect(result.complete).toBe(true);
    const check = await checkSets(fakeBinary(v17), [imagePull], { containerdVersion: '1.7.24' });
    expect(check).toMatchObject({ armed: 1, unresolvedEntries: 0, notInVersion: 1 });
  });

  it('still reports a miss inside the entry’s range, or when the version is unknown', async () => {
    const on2 = await resolveSet(fakeBinary(v17), imagePull, { containerdVersion: 'v2.2.1' });
    expect(on2.entries[1]!.notInVersion).toBeUndefined();
    expect(on2.complete).toBe(false);
    const unknown = await resolveSet(fakeBinary(v17), imagePull);
    expect(unknown.entries[1]!.notInVersion).toBeUndefined();
    expect(unknown.complete).toBe(false);
  });
});
