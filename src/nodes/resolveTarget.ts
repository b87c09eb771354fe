/**
 * One target syntax for every command:
 *   lab | lab:NAME                      the built-in lab (`ctrdbg lab up`)
 *   minikube | minikube:PROFILE         with --node NAME for multi-node clusters
 *   ssh://USER@HOST[:PORT]              any SSH host, with --key and --known-hosts
 * Left out, the target is the one the last successful `setup` used, else `minikube`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { configDir } from '../config.js';
import { inputError } from '../errors.js';

import { exists } from '../util/fsx.js';
import { labFlavor, labPaths, laneOf, readLabState, readVmState, vmTarget } from './labNodes.js';
import { resolveMinikube } from './minikube.js';
import { SYSTEMD_ROOT, SYSTEMD_SOCKET, SYSTEMD_UNIT, type Target } from './target.js';

export interface TargetOptions {
  node?: string;
  key?: string;
  knownHosts?: string;
}

export interface RememberedTarget extends TargetOptions {
  spec: string;
  savedAt: string;
}

const rememberedFile = () => join(configDir(), 'target.json');

export async function rememberTarget(spec: string, options: TargetOptions): Promise<void> {
  await mkdir(configDir(), { recursive: true, mode: 0o700 });
  const record: RememberedTarget = { spec, ...options, savedAt: new Date().toISOString() };
  await writeFile(rememberedFile(), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
}

export async function rememberedTarget(): Promise<RememberedTarget | undefined> {
  try {
    return JSON.parse(await readFile(rememberedFile(), 'utf8')) as RememberedTarget;
  } catch {
    return undefined;
  }
}

export type ParsedSpec =
  | { kind: 'lab'; name: string }
  | { kind: 'minikube'; profile: string }
  | { kind: 'ssh'; user: string; host: string; port: number };

export function parseTargetSpec(spec: string): ParsedSpec {
  if (spec === 'lab') return { kind: 'lab', name: 'default' };
  if (spec.startsWith('lab:')) return { kind: 'lab', name: spec.slice(4) || 'default' };
  if (spec === 'minikube') return { kind: 'minikube', profile: 'minikube' };
  if (spec.startsWith('minikube:')) return { kind: 'minikube', profile: spec.slice(9) || 'minikube' };
  if (spec.startsWith('ssh://')) {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw badSpec(spec);
    }
    const user = decodeURIComponent(url.username);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) throw badSpec(spec);
    const port = url.port ? `:${url.port}` : '';
    if (!user) {
      throw inputError(
        `'${spec}' names no user: ctrdbg logs in over SSH as a user with passwordless sudo, and the user is part of the target.`,
        {
          hint: `Write it as ssh://USER@${url.hostname}${port} (minikube's VM user is docker: ssh://docker@${url.hostname}${port}), with --key FILE for that user's key.`,
        },
      );
    }
    if (url.password)
      throw inputError(
        `'${spec.replace(/:[^:@/]*@/, ':…@')}' holds a password: ctrdbg logs in with a key only.`,
        {
          hint: `Write ssh://${user}@${url.hostname}${port} and pass the key with --key FILE.`,
        },
      );
    if (url.pathname.replace(/^\/$/, '') !== '' || url.search || url.hash)
      throw inputError(`'${spec}' has a path after the host; an SSH target is only ssh://USER@HOST[:PORT].`, {
        hint: `Write ssh://${user}@${url.hostname}${port}.`,
      });
    return { kind: 'ssh', user, host, port: url.port ? Number(url.port) : 22 };
  }
  throw badSpec(spec);
}

function badSpec(spec: string) {
  return inputError(`'${spec}' is not a target ctrdbg knows.`, {
    hint: 'Use lab, lab:NAME, minikube, minikube:PROFILE (with --node N), or ssh://USER@HOST[:PORT] with --key FILE.',
  });
}

/** The spec to use when the user gave none. */
export async function defaultSpec(): Promise<{ spec: string; options: TargetOptions }> {
  const remembered = await rememberedTarget();
  if (remembered) {
    const { spec, savedAt: _, ...options } = remembered;
    return { spec, options };
  }
  return { spec: 'minikube', options: {} };
}

export async function resolveTarget(spec: string | undefined, options: TargetOptions = {}): Promise<Target> {
  let chosen = spec;
  let opts = options;
  if (!chosen) {
    const fallback = await defaultSpec();
    chosen = fallback.spec;
    opts = { ...fallback.options, ...stripUndefined(options) };
  }
  const parsed = parseTargetSpec(chosen);
  switch (parsed.kind) {
    case 'lab':
      return resolveLab(parsed.name);
    case 'minikube':
      return resolveMinikube(parsed.profile, opts.node);
    case 'ssh':
      return resolveSsh(parsed, opts);
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export async function resolveLab(name: string): Promise<Target> {
  // A VM lab (`lab up --vm`): a systemd node reached through QEMU's loopback forward (src/lab/vm.ts).
  const vm = await readVmState(name);
  if (vm) return vmTarget(name, vm);
  const paths = labPaths(name);
  const state = await readLabState(paths);
  if (!state) {
    throw inputError(`The lab${name === 'default' ? '' : ` '${name}'`} is not up.`, {
      hint: `Start it with: ctrdbg lab up${name === 'default' ? '' : ` --name ${name}`}`,
    });
  }
  return {
    spec: name === 'default' ? 'lab' : `lab:${name}`,
    kind: 'lab',
    endpoint: {
      host: state.ssh.host,
      port: state.ssh.port,
      user: state.ssh.user,
      keyPath: paths.ssh.clientKey,
      knownHostsPath: paths.ssh.knownHosts,
      label: name === 'default' ? 'lab' : `lab:${name}`,
      unreachableHint: `For the lab: 'ctrdbg lab status${name === 'default' ? '' : ` --name ${name}`}', then 'ctrdbg lab up${name === 'default' ? '' : ` --name ${name}`}'.`,
    },
    service: { kind: 'lab', command: paths.node.service, envFile: paths.node.envFile },
    node: {
      socket: paths.node.socket,
      ctrdbgDir: paths.node.ctrdbgDir,
      containerdRoot: `${paths.node.root}/var/lib/containerd`,
      root: paths.node.root,
    },
    lab: { name, tree: paths.tree, flavor: labFlavor(state), lane: laneOf(labFlavor(state)) },
  };
}

async function resolveSsh(
  parsed: Extract<ParsedSpec, { kind: 'ssh' }>,
  options: TargetOptions,
): Promise<Target> {
  const home = homedir();
  let keyPath = options.key;
  if (!keyPath) {
    for (const candidate of ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((k) => join(home, '.ssh', k))) {
      if (await exists(candidate)) {
        keyPath = candidate;
        break;
      }
    }
  }
  if (!keyPath) {
    throw inputError(`No SSH key for ${parsed.user}@${parsed.host}.`, {
      hint: 'Pass one with --key ~/.ssh/id_ed25519.',
    });
  }
  const spec = `ssh://${parsed.user}@${parsed.host}${parsed.port === 22 ? '' : `:${parsed.port}`}`;
  return {
    spec,
    kind: 'ssh',
    endpoint: {
      host: parsed.host,
      port: parsed.port,
      user: parsed.user,
      keyPath,
      knownHostsPath: options.knownHosts ?? join(home, '.ssh', 'known_hosts'),
      label: spec,
    },
    service: { kind: 'systemd', unit: SYSTEMD_UNIT },
    node: { socket: SYSTEMD_SOCKET, ctrdbgDir: '/var/lib/ctrdbg', containerdRoot: SYSTEMD_ROOT },
  };
}
