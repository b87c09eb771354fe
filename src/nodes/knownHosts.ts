/**
 * OpenSSH known_hosts, read the way `ssh` reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"), so a file a
 * user already trusts pins ctrdbg's connections too. Pure: text in, decisions out; sshHost.ts does the I/O.
 *
 * Supported: plain names and addresses, `[host]:port` for non-22 ports, comma-separated pattern lists with
 * `*`/`?` wildcards and `!` negation, hashed names (`|1|salt|hash`, HMAC-SHA1 of the name keyed by the salt),
 * and the `@revoked` marker. `@cert-authority` lines are recognised but never pin a key: ssh2 does not
 * verify host certificates, so trusting a CA line would mean accepting an unverified key.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type KnownHostsMarker = 'cert-authority' | 'revoked';

export interface KnownHostsEntry {
  /** 1-based line number in the file, for messages. */
  line: number;
  marker?: KnownHostsMarker;
  /** The host pattern field as written (comma list, or one `|1|…` hashed name). */
  hosts: string;
  keyType: string;
  /** The decoded public key blob (what the server sends during key exchange). */
  key: Buffer;
  comment?: string;
}

export interface KnownHostsFile {
  entries: KnownHostsEntry[];
  /** Lines that are neither comments, blank nor valid entries; skipped, reported for diagnostics. */
  invalid: { line: number; reason: string }[];
}

export function parseKnownHosts(text: string): KnownHostsFile {
  const entries: KnownHostsEntry[] = [];
  const invalid: KnownHostsFile['invalid'] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/[ \t]+/);
    let marker: KnownHostsMarker | undefined;
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()!.slice(1);
      if (name !== 'cert-authority' && name !== 'revoked') {
        invalid.push({ line, reason: `unknown marker @${name}` });
        return;
      }
      marker = name;
    }
    const [hosts, keyType, keyBase64, ...rest] = fields;
    if (!hosts || !keyType || !keyBase64) {
      invalid.push({ line, reason: 'expected "hosts keytype base64-key [comment]"' });
      return;
    }
    const key = decodeBase64Strict(keyBase64);
    if (!key) {
      invalid.push({ line, reason: 'the key is not valid base64' });
      return;
    }
    // The blob names its own type; a line whose label disagrees with its blob is corrupt, not a pin.
    const blobType = keyTypeOfBlob(key);
    if (blobType !== keyType) {
      invalid.push({
        line,
        reason: `the key type ${keyType} does not match the key (${blobType ?? 'unreadable'})`,
      });
      return;
    }
    const entry: KnownHostsEntry = { line, hosts, keyType, key };
    if (marker) entry.marker = marker;
    if (rest.length) entry.comment = rest.join(' ');
    entries.push(entry);
  });
  return { entries, invalid };
}

function decodeBase64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const decoded = Buffer.from(text, 'base64');
  return decoded.length > 0 ? decoded : undefined;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** Whether an entry's host field covers `host:port`. A matching `!pattern` excludes the entry outright. */
export function hostMatches(hostsField: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (hostsField.startsWith('|1|')) return hashedNameMatches(hostsField, name);
  let matched = false;
  for (const raw of hostsField.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern === '' || !wildcardMatches(pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function wildcardMatches(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`).test(name);
}

/** `|1|base64(salt)|base64(HMAC-SHA1(key = salt, data = name))`, as written by `ssh-keygen -H`. */
function hashedNameMatches(field: string, name: string): boolean {
  const parts = field.split('|');
  if (parts.length !== 4) return false;
  const salt = Buffer.from(parts[2] ?? '', 'base64');
  const expected = Buffer.from(parts[3] ?? '', 'base64');
  if (salt.length === 0 || expected.length !== 20) return false;
  const actual = createHmac('sha1', salt).update(name).digest();
  return timingSafeEqual(actual, expected);
}

/** Hashes a name the way `ssh-keygen -H` does; for tests and for writing hashed files. */
export function hashKnownHostsName(name: string, salt: Buffer): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

export type HostKeyCheck =
  | { status: 'match'; entry: KnownHostsEntry }
  /** No entry pins this host. `certAuthorityLines` lists `@cert-authority` lines that matched but cannot be used. */
  | { status: 'missing'; certAuthorityLines: number[] }
  /** The host is pinned, to other keys: the key CHANGED (or the host is being impersonated). */
  | { status: 'mismatch'; entries: KnownHostsEntry[] }
  | { status: 'revoked'; entry: KnownHostsEntry };

/** Decides whether `key` (the server's host key blob) is the one pinned for `host:port`. */
export function checkHostKey(file: KnownHostsFile, host: string, port: number, key: Buffer): HostKeyCheck {
  // A revoked key is refused whatever host its line names: revocation is about the key, and refusing
  // too much is the safe side.
  const revoked = file.entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const pins: KnownHostsEntry[] = [];
  const certAuthorityLines: number[] = [];
  for (const entry of file.entries) {
    if (entry.marker === 'revoked' || !hostMatches(entry.hosts, host, port)) continue;
    if (entry.marker === 'cert-authority') certAuthorityLines.push(entry.line);
    else pins.push(entry);
  }
  const match = pins.find((e) => e.key.equals(key));
  if (match) return { status: 'match', entry: match };
  if (pins.length) return { status: 'mismatch', entries: pins };
  return { status: 'missing', certAuthorityLines };
}

/** Key types pinned for a host, so the handshake can ask for a key type the file can verify. */
export function pinnedKeyTypes(file: KnownHostsFile, host: string, port: number): string[] {
  const types: string[] = [];
  for (const entry of file.entries) {
    if (entry.marker || !hostMatches(entry.hosts, host, port)) continue;
    if (!types.includes(entry.keyType)) types.push(entry.keyType);
  }
  return types;
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  const type = blob.subarray(4, 4 + length).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

/** `SHA256:…` as `ssh-keygen -lf` and `ssh` print it. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The line that pins `blob` for `host:port`. */
export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${knownHostsName(host, port)} ${keyTypeOfBlob(blob) ?? 'unknown'} ${blob.toString('base64')}`;
}
