/**
 * Every way an SSH connection or command can fail, as one of the taxonomy's errors with a hint: unreachable,
 * refused key, changed or unknown host key, no passwordless sudo. ssh2-free: it reads only the shapes of
 * ssh2's errors (`level`, `code`).
 */
import { authError, type CtrdbgError, hostKeyError, sudoError, unreachableError } from '../../errors.js';
import {
  fingerprintSha256,
  type HostKeyCheck,
  keyTypeOfBlob,
  knownHostsLine,
  knownHostsName,
} from '../knownHosts.js';
import type { SshEndpoint } from '../remoteHost.js';

export function describe(endpoint: SshEndpoint): string {
  return `${endpoint.label} (${endpoint.user}@${endpoint.host}:${endpoint.port})`;
}

export function hostKeyProblem(
  endpoint: SshEndpoint,
  fileExists: boolean,
  check: HostKeyCheck,
  blob: Buffer,
): CtrdbgError {
  const path = endpoint.knownHostsPath;
  const presented = `${keyTypeOfBlob(blob) ?? 'unknown-type'} key ${fingerprintSha256(blob)}`;
  const name = knownHostsName(endpoint.host, endpoint.port);
  const details = { knownHostsPath: path, host: name, presented: fingerprintSha256(blob) };
  switch (check.status) {
    case 'match':
      throw new Error('hostKeyProblem called for a matching key');
    case 'revoked':
      return hostKeyError(
        `The host key of ${describe(endpoint)} (${presented}) is marked @revoked in ${path} line ${check.entry.line}; refusing to connect.`,
        {
          hint: 'Do not use this node until its owner replaces the host key.',
          details: { ...details, line: check.entry.line },
        },
      );
    case 'mismatch': {
      const pins = check.entries
        .map((e) => `line ${e.line} (${e.keyType} ${fingerprintSha256(e.key)})`)
        .join(', ');
      return hostKeyError(
        `The host key of ${describe(endpoint)} has CHANGED: the node presented ${presented}, but ${path} pins ${pins} for ${name}. Either the node was rebuilt or someone is intercepting the connection.`,
        {
          hint: `If the node was rebuilt on purpose, remove the old entry (ssh-keygen -R '${name}' -f ${path}) and add the new key; otherwise do not connect.`,
          details: { ...details, lines: check.entries.map((e) => e.line) },
        },
      );
    }
    case 'missing': {
      const where = fileExists ? path : `${path}, which does not exist`;
      const ca = check.certAuthorityLines.length
        ? ` (line ${check.certAuthorityLines.join(', ')} is a @cert-authority entry, which ctrdbg cannot use: it does not verify host certificates)`
        : '';
      return hostKeyError(
        `The host key of ${describe(endpoint)} is not in known_hosts (${where})${ca}, so ctrdbg cannot verify it is talking to the right node. The node presented ${presented}.`,
        {
          hint: `If that fingerprint is the node's (check with ssh-keygen -lf on its /etc/ssh/ssh_host_*_key.pub), add it with: echo '${knownHostsLine(endpoint.host, endpoint.port, blob)}' >> ${path}`,
          details,
        },
      );
    }
  }
}

export function connectError(
  endpoint: SshEndpoint,
  keyFingerprint: string,
  readyTimeoutMs: number,
  error: Error & { level?: string; code?: string },
): CtrdbgError {
  const where = describe(endpoint);
  // What to check when the node does not answer, from whoever resolved it (the lab says how to bring it up).
  const labHint = endpoint.unreachableHint ? ` ${endpoint.unreachableHint}` : '';
  if (error.level === 'client-authentication') {
    return authError(
      `The node ${where} refused key ${endpoint.keyPath} (${keyFingerprint}) for user ${endpoint.user}.`,
      {
        // The user and key come from the target: ssh://USER@HOST and --key; a lab or minikube names its own.
        hint: endpoint.label.startsWith('ssh://')
          ? `Check that ${endpoint.keyPath}.pub is in ~${endpoint.user}/.ssh/authorized_keys on the node and that ${endpoint.user} may log in (sshd AllowUsers); pass another key with --key FILE, or another user in the target (ssh://USER@${endpoint.host}${endpoint.port === 22 ? '' : `:${endpoint.port}`}).`
          : `${endpoint.label} chooses its own user and key: check that ${endpoint.keyPath}.pub is still in ~${endpoint.user}/.ssh/authorized_keys on the node.${labHint}`,
        cause: error,
      },
    );
  }
  if (error.level === 'client-timeout') {
    return unreachableError(
      `Timed out after ${Math.round(readyTimeoutMs / 1000)} s connecting to ${where}: no SSH handshake.`,
      {
        hint: `Check that the node is up and the address and port are right; a firewall may be dropping packets.${labHint}`,
        cause: error,
      },
    );
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return unreachableError(
        `Cannot reach ${where}: connection refused (nothing listens on port ${endpoint.port}).`,
        {
          hint: `Check that the node is up and its SSH server listens on port ${endpoint.port}.${labHint}`,
          cause: error,
        },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachableError(`Cannot resolve the host name '${endpoint.host}' of ${endpoint.label}.`, {
        hint: 'Check the spelling, or use the IP address.',
        cause: error,
      });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
      return unreachableError(`Cannot reach ${where}: ${error.message}.`, {
        hint: 'Check that the node is up and routable from here (VPN, firewall, VM network).',
        cause: error,
      });
  }
  return unreachableError(`The SSH connection to ${where} failed: ${error.message}.`, {
    hint: `Check that an SSH server listens there.${labHint}`,
    cause: error,
  });
}

export function messageOf(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  if (e?.code === 'EACCES') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

export const SUDO_REFUSED =
  /sudo: (a password is required|a terminal is required|.*is not in the sudoers|.*not allowed to)/;

/** sudo refused to run without a password: the rule to add, for the node's user. */
export function sudoRefused(endpoint: SshEndpoint, detail: string): CtrdbgError {
  const user = endpoint.user;
  return sudoError(
    `${user} on ${endpoint.label} cannot run sudo without a password${detail ? `: ${detail}` : '.'}`,
    {
      hint: `ctrdbg needs passwordless sudo on the node. Add a rule there, e.g.: echo '${user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/${user} && sudo chmod 0440 /etc/sudoers.d/${user}`,
    },
  );
}

/** The connection ended while `what` ran, or before it reported how it ended. */
export function lostWhileRunning(
  endpoint: SshEndpoint,
  what: string,
  connectionClosed: boolean,
  cause?: Error,
): CtrdbgError {
  return unreachableError(
    connectionClosed
      ? `Lost the SSH connection to ${describe(endpoint)} while running ${what}.`
      : `The SSH session running ${what} on ${describe(endpoint)} ended without an exit status: its channel died, so the command's outcome is unknown.`,
    {
      hint: 'Check that the node is still up (its sshd and free memory), then run the command again.',
      cause,
    },
  );
}

export function isChannelRefusal(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('(SSH) Channel open failure');
}

export function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}
