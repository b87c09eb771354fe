/** Target strings and the SSH refusals' hints: each says what is wrong and names only options that exist. */
import { describe, expect, it } from 'vitest';
import { isCtrdbgError } from '../../src/errors.js';
import { parseTargetSpec } from '../../src/nodes/resolveTarget.js';
import { connectError } from '../../src/nodes/ssh/sshErrors.js';

function refusal(spec: string) {
  try {
    parseTargetSpec(spec);
  } catch (error) {
    if (isCtrdbgError(error)) return error;
    throw error;
  }
  throw new Error(`${spec} was accepted`);
}

describe('target strings', () => {
  it('reads lab, minikube and ssh targets', () => {
    expect(parseTargetSpec('lab')).toEqual({ kind: 'lab', name: 'default' });
    expect(parseTargetSpec('lab:cri')).toEqual({ kind: 'lab', name: 'cri' });
    expect(parseTargetSpec('minikube:p2')).toEqual({ kind: 'minikube', profile: 'p2' });
    expect(parseTargetSpec('ssh://docker@10.0.0.5:2222')).toEqual({
      kind: 'ssh',
      user: 'docker',
      host: '10.0.0.5',
      port: 2222,
    });
  });

  it('ssh://HOST without a user says a user is needed and how to write it', () => {
    const error = refusal('ssh://127.0.0.1');
    expect(error.exitCode).toBe(3);
    expect(error.message).toContain("'ssh://127.0.0.1' names no user");
    expect(error.message).not.toContain('not a target ctrdbg knows');
    expect(error.hint).toContain('ssh://USER@127.0.0.1');
    expect(refusal('ssh://127.0.0.1:2222').hint).toContain('ssh://USER@127.0.0.1:2222');
  });

  it('a password or a path in an ssh target is named, the password never echoed', () => {
    const password = refusal('ssh://u:secret@h');
    expect(password.message).toContain('holds a password');
    expect(`${password.message} ${password.hint}`).not.toContain('secret');
    expect(refusal('ssh://u@h/tmp').message).toContain('has a path after the host');
  });

  it('anything else is not a target, with the forms that are', () => {
    const error = refusal('kind://x');
    expect(error.message).toBe("'kind://x' is not a target ctrdbg knows.");
    expect(error.hint).toContain('ssh://USER@HOST[:PORT]');
  });
});

describe('a refused key', () => {
  const endpoint = {
    host: '10.0.0.5',
    port: 22,
    user: 'docker',
    keyPath: '/home/me/.ssh/id_ed25519',
    knownHostsPath: '/home/me/.ssh/known_hosts',
  };
  const refused = Object.assign(new Error('All configured authentication methods failed'), {
    level: 'client-authentication',
  });

  it('names the key, the user and the options that exist (--key, ssh://USER@HOST), never --user', () => {
    const error = connectError(
      { ...endpoint, label: 'ssh://docker@10.0.0.5' },
      'SHA256:abc',
      10_000,
      refused,
    );
    expect(error.exitCode).toBe(8);
    expect(error.message).toContain('refused key /home/me/.ssh/id_ed25519 (SHA256:abc) for user docker');
    expect(error.hint).not.toContain('--user');
    expect(error.hint).toContain('--key FILE');
    expect(error.hint).toContain('ssh://USER@10.0.0.5');
  });

  it('for a lab, whose user and key are its own, says so instead', () => {
    const error = connectError(
      { ...endpoint, label: 'lab', unreachableHint: "For the lab: 'ctrdbg lab status'." },
      'SHA256:abc',
      10_000,
      refused,
    );
    expect(error.hint).not.toContain('--user');
    expect(error.hint).not.toContain('ssh://USER');
    expect(error.hint).toContain('lab chooses its own user and key');
  });
});
