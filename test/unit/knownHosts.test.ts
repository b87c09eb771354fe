/**
 * known_hosts parsing and host-key decisions, checked against real keys from ssh-keygen and against
 * files that ssh-keygen itself hashed, so "compatible with OpenSSH" is tested rather than assumed.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprintSha256,
  hashKnownHostsName,
  hostMatches,
  keyTypeOfBlob,
  knownHostsLine,
  knownHostsName,
  parseKnownHosts,
  pinnedKeyTypes,
} from '../../src/nodes/knownHosts.js';

let dir: string;
const keys: Record<string, { type: string; base64: string; blob: Buffer; fingerprint: string }> = {};

function makeKey(name: string, type: 'ed25519' | 'ecdsa' | 'rsa'): void {
  const path = join(dir, name);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    type,
    ...(type === 'rsa' ? ['-b', '2048'] : []),
    '-N',
    '',
    '-f',
    path,
  ]);
  const [keyType, base64] = readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/);
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${path}.pub`, '-E', 'sha256'], {
    encoding: 'utf8',
  }).split(' ')[1]!;
  keys[name] = { type: keyType!, base64: base64!, blob: Buffer.from(base64!, 'base64'), fingerprint };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctrdbg-knownhosts-'));
  makeKey('a', 'ed25519');
  makeKey('b', 'ed25519');
  makeKey('ec', 'ecdsa');
  makeKey('rsa', 'rsa');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const k = (name: string) => keys[name]!;

describe('parseKnownHosts', () => {
  it('reads entries with line numbers, skipping comments and blank lines, keeping comments on entries', () => {
    const text = [
      '# pinned by hand',
      '',
      `node1 ${k('a').type} ${k('a').base64} root@node1`,
      '   ',
      `\t[10.0.0.5]:2222,10.0.0.6 ${k('ec').type} ${k('ec').base64}`,
    ].join('\n');
    const file = parseKnownHosts(text);
    expect(file.invalid).toEqual([]);
    expect(file.entries.map((e) => [e.line, e.hosts, e.keyType, e.comment])).toEqual([
      [3, 'node1', 'ssh-ed25519', 'root@node1'],
      [5, '[10.0.0.5]:2222,10.0.0.6', 'ecdsa-sha2-nistp256', undefined],
    ]);
    expect(file.entries[0]!.key.equals(k('a').blob)).toBe(true);
  });

  it('reports malformed lines instead of trusting them', () => {
    const text = [
      'onlyhost',
      `h ssh-ed25519 !!!notbase64`,
      `h ssh-rsa ${k('a').base64}`,
      `@bogus h ${k('a').type} ${k('a').base64}`,
      `good ${k('a').type} ${k('a').base64}`,
    ].join('\r\n');
    const file = parseKnownHosts(text);
    expect(file.entries.map((e) => e.line)).toEqual([5]);
    expect(file.invalid.map((i) => i.line)).toEqual([1, 2, 3, 4]);
    expect(file.invalid[2]!.reason).toContain('does not match');
    expect(file.invalid[3]!.reason).toContain('@bogus');
  });

  it('recognises @revoked and @cert-authority markers', () => {
    const file = parseKnownHosts(
      [
        `@revoked * ${k('b').type} ${k('b').base64}`,
        `@cert-authority *.lab ${k('ec').type} ${k('ec').base64}`,
      ].join('\n'),
    );
    expect(file.entries.map((e) => e.marker)).toEqual(['revoked', 'cert-authority']);
  });
});

describe('host matching', () => {
  it('uses [host]:port for non-22 ports and the bare host for port 22', () => {
    expect(knownHostsName('Node1', 22)).toBe('node1');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(hostMatches('node1', 'node1', 22)).toBe(true);
    expect(hostMatches('node1', 'node1', 2222)).toBe(false);
    expect(hostMatches('[node1]:2222', 'node1', 2222)).toBe(true);
    expect(hostMatches('[node1]:2222', 'node1', 22)).toBe(false);
    expect(hostMatches('[node1]:2222', 'node1', 2223)).toBe(false);
    expect(hostMatches('[node1]:22', 'node1', 22)).toBe(false);
  });

  it('handles comma lists, wildcards, negation and case', () => {
    expect(hostMatches('a,NODE1,b', 'node1', 22)).toBe(true);
    expect(hostMatches('*.lab', 'n1.lab', 22)).toBe(true);
    expect(hostMatches('*.lab', 'n1.lab.evil', 22)).toBe(false);
    expect(hostMatches('n?.lab', 'n1.lab', 22)).toBe(true);
    expect(hostMatches('n?.lab', 'n12.lab', 22)).toBe(false);
    expect(hostMatches('*.lab,!bad.lab', 'bad.lab', 22)).toBe(false);
    expect(hostMatches('!bad.lab,*.lab', 'good.lab', 22)).toBe(true);
    expect(hostMatches('!bad.lab', 'good.lab', 22)).toBe(false);
    expect(hostMatches('[10.0.0.*]:2222', '10.0.0.7', 2222)).toBe(true);
    expect(hostMatches('10.0.0.5', '10.0.0.50', 22)).toBe(false);
  });

  it('matches names hashed by ssh-keygen -H, for port 22 and [host]:port', () => {
    const file = join(dir, 'hashed');
    writeFileSync(
      file,
      [`node1 ${k('a').type} ${k('a').base64}`, `[127.0.0.1]:2222 ${k('b').type} ${k('b').base64}`, ''].join(
        '\n',
      ),
    );
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('node1');
    expect(text).not.toContain('127.0.0.1');
    const parsed = parseKnownHosts(text);
    expect(parsed.entries).toHaveLength(2);
    const [first, second] = parsed.entries;
    expect(first!.hosts).toMatch(/^\|1\|/);
    expect(hostMatches(first!.hosts, 'node1', 22)).toBe(true);
    expect(hostMatches(first!.hosts, 'node2', 22)).toBe(false);
    expect(hostMatches(first!.hosts, 'node1', 2222)).toBe(false);
    expect(hostMatches(second!.hosts, '127.0.0.1', 2222)).toBe(true);
    expect(hostMatches(second!.hosts, '127.0.0.1', 22)).toBe(false);
    expect(checkHostKey(parsed, '127.0.0.1', 2222, k('b').blob).status).toBe('match');
    expect(checkHostKey(parsed, '127.0.0.1', 2222, k('a').blob).status).toBe('mismatch');
  });

  it('hashes names exactly as OpenSSH does (HMAC-SHA1 keyed by the salt)', () => {
    const salt = randomBytes(20);
    const field = hashKnownHostsName('[h]:2200', salt);
    const expected = createHmac('sha1', salt).update('[h]:2200').digest('base64');
    expect(field).toBe(`|1|${salt.toString('base64')}|${expected}`);
    expect(hostMatches(field, 'h', 2200)).toBe(true);
    expect(hostMatches(field, 'H', 2200)).toBe(true);
    expect(hostMatches(field, 'h', 2201)).toBe(false);
    expect(hostMatches('|1|garbage|x', 'h', 2200)).toBe(false);
    // ssh-keygen -F finds our hash: the two implementations agree.
    const file = join(dir, 'ours');
    writeFileSync(file, `${field} ${k('a').type} ${k('a').base64}\n`);
    const found = execFileSync('ssh-keygen', ['-F', '[h]:2200', '-f', file], { encoding: 'utf8' });
    expect(found).toContain(k('a').base64);
  });
});

describe('checkHostKey', () => {
  const file = () =>
    parseKnownHosts(
      [
        `# lab`,
        `[127.0.0.1]:2222 ${k('a').type} ${k('a').base64}`,
        `node1,10.0.0.5 ${k('rsa').type} ${k('rsa').base64}`,
        `node1 ${k('ec').type} ${k('ec').base64}`,
      ].join('\n'),
    );

  it('accepts the pinned key and says which line pinned it', () => {
    const check = checkHostKey(file(), '127.0.0.1', 2222, k('a').blob);
    expect(check).toMatchObject({ status: 'match', entry: { line: 2 } });
    expect(checkHostKey(file(), 'node1', 22, k('ec').blob)).toMatchObject({
      status: 'match',
      entry: { line: 4 },
    });
  });

  it('reports a different key for a pinned host as a mismatch, listing every pinning line', () => {
    const check = checkHostKey(file(), '127.0.0.1', 2222, k('b').blob);
    expect(check.status).toBe('mismatch');
    if (check.status === 'mismatch') expect(check.entries.map((e) => e.line)).toEqual([2]);
    const node = checkHostKey(file(), 'node1', 22, k('b').blob);
    if (node.status !== 'mismatch') throw new Error(`expected mismatch, got ${node.status}`);
    expect(node.entries.map((e) => e.line)).toEqual([3, 4]);
  });

  it('reports an unpinned host (or port) as missing', () => {
    expect(checkHostKey(file(), '127.0.0.1', 2223, k('a').blob).status).toBe('missing');
    expect(checkHostKey(file(), '127.0.0.1', 22, k('a').blob).status).toBe('missing');
    expect(checkHostKey(parseKnownHosts(''), 'node1', 22, k('a').blob).status).toBe('missing');
  });

  it('refuses a revoked key even where a line pins it, and never trusts @cert-authority lines', () => {
    const text = [
      `node1 ${k('a').type} ${k('a').base64}`,
      `@revoked other ${k('a').type} ${k('a').base64}`,
      `@cert-authority *.lab ${k('b').type} ${k('b').base64}`,
    ].join('\n');
    expect(checkHostKey(parseKnownHosts(text), 'node1', 22, k('a').blob)).toMatchObject({
      status: 'revoked',
      entry: { line: 2 },
    });
    expect(checkHostKey(parseKnownHosts(text), 'n1.lab', 22, k('b').blob)).toEqual({
      status: 'missing',
      certAuthorityLines: [3],
    });
  });

  it('lists the pinned key types of a host, for host-key algorithm negotiation', () => {
    expect(pinnedKeyTypes(file(), 'node1', 22)).toEqual(['ssh-rsa', 'ecdsa-sha2-nistp256']);
    expect(pinnedKeyTypes(file(), '127.0.0.1', 2222)).toEqual(['ssh-ed25519']);
    expect(pinnedKeyTypes(file(), 'other', 22)).toEqual([]);
  });
});

describe('key helpers', () => {
  it('reads the key type from a blob and prints fingerprints the way ssh-keygen does', () => {
    for (const name of ['a', 'ec', 'rsa']) {
      expect(keyTypeOfBlob(k(name).blob)).toBe(k(name).type);
      expect(fingerprintSha256(k(name).blob)).toBe(k(name).fingerprint);
    }
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBeUndefined();
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0, 50, 1]))).toBeUndefined();
  });

  it('writes a known_hosts line that parses back to a match', () => {
    const line = knownHostsLine('127.0.0.1', 2222, k('a').blob);
    expect(line).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${k('a').base64}`);
    expect(checkHostKey(parseKnownHosts(line), '127.0.0.1', 2222, k('a').blob).status).toBe('match');
  });
});
