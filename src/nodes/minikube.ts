/**
 * minikube → SSH endpoint, through minikube's own CLI (and docker's/podman's for container drivers):
 *   profile list -o json   runtime, driver, nodes, status
 *   ip -p P -n NODE        VM drivers: the node's IP, SSH on 22
 *   docker port MACHINE 22 docker/podman drivers: 127.0.0.1 and the published port
 *   ssh-key -p P -n NODE   the private key minikube created for the machine
 * The host key is pinned from the node's own /etc/ssh/ssh_host_*_key.pub, read once through
 * `minikube ssh` (minikube's own channel), into a known_hosts file of ctrdbg's.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { configDir } from '../config.js';
import { environmentError, inputError, nodeError } from '../errors.js';
import { run } from '../util/exec.js';
import { exists } from '../util/fsx.js';
import type { MinikubeInfo, Target } from './target.js';
import { SYSTEMD_ROOT, SYSTEMD_SOCKET, SYSTEMD_UNIT } from './target.js';

/** The parts of `minikube profile list -o json` ctrdbg reads. */
export interface ProfileList {
  valid?: MinikubeProfile[] | null;
  invalid?: MinikubeProfile[] | null;
}

export interface MinikubeProfile {
  Name: string;
  Status?: string;
  Config?: {
    Driver?: string;
    KubernetesConfig?: { ContainerRuntime?: string; KubernetesVersion?: string };
    Nodes?: { Name: string; IP?: string; Port?: number; ControlPlane?: boolean; Worker?: boolean }[];
  };
  Active?: boolean;
}

const CONTAINER_DRIVERS = new Set(['docker', 'podman']);

async function minikube(args: string[]): Promise<string> {
  const result = await run('minikube', args, { timeout: 60_000 });
  if (result.exitCode !== 0) {
    throw environmentError(
      `'minikube ${args.join(' ')}' failed: ${(result.stderr || result.stdout).trim()}`,
      {
        hint: 'Check that the cluster is running: minikube status.',
      },
    );
  }
  return result.stdout.trim();
}

/** Picks the profile and node and checks the cluster can be debugged (running, containerd runtime). */
export function selectNode(
  list: ProfileList,
  profileName: string,
  nodeName: string | undefined,
): MinikubeInfo & { status: string } {
  const profiles = list.valid ?? [];
  const profile = profiles.find((p) => p.Name === profileName);
  if (!profile) {
    const invalid = (list.invalid ?? []).find((p) => p.Name === profileName);
    const names = profiles.map((p) => p.Name).join(', ') || 'none';
    throw inputError(
      invalid
        ? `minikube profile '${profileName}' is invalid.`
        : `There is no minikube profile '${profileName}' (profiles: ${names}).`,
      { hint: `Start one with: minikube start -p ${profileName} --container-runtime=containerd` },
    );
  }
  const runtime = profile.Config?.KubernetesConfig?.ContainerRuntime ?? '';
  if (runtime !== 'containerd') {
    throw nodeError(
      `minikube profile '${profileName}' runs the '${runtime || 'unknown'}' container runtime, not containerd: there is no containerd to debug.`,
      {
        hint: `Recreate it with containerd: minikube delete -p ${profileName} && minikube start -p ${profileName} --container-runtime=containerd`,
      },
    );
  }
  const nodes = profile.Config?.Nodes ?? [];
  // minikube's config names the primary control plane "" and extra nodes "m02", "m03", …; its machine is
  // the profile name, the others "<profile>-<node>". Accept either spelling from the user.
  const wanted =
    nodeName === undefined || nodeName === '' || nodeName === profileName
      ? ''
      : nodeName.replace(`${profileName}-`, '');
  const node =
    wanted === '' ? (nodes.find((n) => n.ControlPlane) ?? nodes[0]) : nodes.find((n) => n.Name === wanted);
  if (!node) {
    const known = nodes.map((n) => (n.Name === '' ? profileName : `${profileName}-${n.Name}`)).join(', ');
    throw inputError(
      `minikube profile '${profileName}' has no node '${nodeName}' (nodes: ${known || 'none'}).`,
      {
        hint: `Pick one of them with --node, or list them with: minikube node list -p ${profileName}`,
      },
    );
  }
  const machine = node.Name === '' ? profileName : `${profileName}-${node.Name}`;
  return {
    profile: profileName,
    node: node.Name === '' ? machine : node.Name,
    machine,
    driver: profile.Config?.Driver ?? 'unknown',
    runtime,
    ...(profile.Config?.KubernetesConfig?.KubernetesVersion
      ? { kubernetesVersion: profile.Config.KubernetesConfig.KubernetesVersion }
      : {}),
    status: profile.Status ?? 'Unknown',
  };
}

/** `docker port M 22` prints one ADDRESS:PORT line per published address (IPv4 and IPv6); any line's port will do. */
export function parseDockerPort(output: string): number | undefined {
  for (const line of output.split('\n')) {
    const m = /:(\d+)\s*$/.exec(line.trim());
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** "kubectl get nodes -o wide" → the CONTAINER-RUNTIME column per node name. */
export function parseNodeRuntimes(output: string): Map<string, string> {
  const lines = output.trim().split('\n');
  const header = lines[0] ?? '';
  const at = header.indexOf('CONTAINER-RUNTIME');
  const result = new Map<string, string>();
  if (at < 0) return result;
  for (const line of lines.slice(1)) {
    const name = line.split(/\s+/)[0] ?? '';
    const runtime = line.slice(at).trim().split(/\s+/)[0] ?? '';
    if (name) result.set(name, runtime);
  }
  return result;
}

export async function resolveMinikube(profileName: string, nodeName: string | undefined): Promise<Target> {
  let list: ProfileList;
  const raw = await minikube(['profile', 'list', '-o', 'json']);
  try {
    list = JSON.parse(raw) as ProfileList;
  } catch (cause) {
    throw environmentError("'minikube profile list -o json' did not print JSON.", {
      cause,
      hint: 'Is this a supported minikube version?',
    });
  }
  const info = selectNode(list, profileName, nodeName);
  if (info.status !== 'Running' && info.status !== 'OK') {
    throw nodeError(`minikube profile '${profileName}' is not running (status: ${info.status}).`, {
      hint: `Start it with: minikube start -p ${profileName}`,
    });
  }
  const nodeArgs = ['-p', profileName, '-n', info.machine];
  await checkKubectlRuntime(profileName, info.machine);

  let host: string;
  let port: number;
  if (CONTAINER_DRIVERS.has(info.driver)) {
    const engine = info.driver;
    const out = await run(engine, ['port', info.machine, '22'], { timeout: 30_000 });
    const published = out.exitCode === 0 ? parseDockerPort(out.stdout) : undefined;
    if (!published) {
      throw environmentError(
        `Could not find the SSH port of minikube's ${engine} container '${info.machine}'.`,
        {
          hint: `Check it runs: ${engine} ps --filter name=${info.machine}`,
        },
      );
    }
    host = '127.0.0.1';
    port = published;
  } else {
    host = await minikube(['ip', ...nodeArgs]);
    port = 22;
  }
  const keyPath = await minikube(['ssh-key', ...nodeArgs]);
  const user = await sshUser(keyPath);
  const knownHostsPath = join(configDir(), 'known_hosts', `minikube-${info.machine}`);
  await pinHostKey(knownHostsPath, host, port, nodeArgs);
  return {
    spec: profileName === 'minikube' ? 'minikube' : `minikube:${profileName}`,
    kind: 'minikube',
    endpoint: {
      host,
      port,
      user,
      keyPath,
      knownHostsPath,
      label: `minikube ${info.machine}`,
    },
    service: { kind: 'systemd', unit: SYSTEMD_UNIT },
    // /var/lib/minikube survives a VM restart on minikube's ISO; most other paths do not.
    node: { socket: SYSTEMD_SOCKET, ctrdbgDir: '/var/lib/minikube/ctrdbg', containerdRoot: SYSTEMD_ROOT },
    minikube: {
      profile: info.profile,
      node: info.node,
      machine: info.machine,
      driver: info.driver,
      runtime: info.runtime,
      ...(info.kubernetesVersion ? { kubernetesVersion: info.kubernetesVersion } : {}),
    },
  };
}

/**
 * minikube's machine config (libmachine's config.json beside the key) names the SSH user; it is "docker"
 * for every driver minikube ships, which is also the fallback.
 */
async function sshUser(keyPath: string): Promise<string> {
  try {
    const config = JSON.parse(await readFile(join(dirname(keyPath), 'config.json'), 'utf8')) as {
      Driver?: { SSHUser?: string };
    };
    return config.Driver?.SSHUser || 'docker';
  } catch {
    return 'docker';
  }
}

/** kubectl's view of the runtime is authoritative when kubectl is there; without it the profile's is used. */
async function checkKubectlRuntime(profile: string, machine: string): Promise<void> {
  const result = await run('kubectl', ['--context', profile, 'get', 'nodes', '-o', 'wide'], {
    timeout: 30_000,
  }).catch(() => undefined);
  if (result?.exitCode !== 0) return;
  const runtime = parseNodeRuntimes(result.stdout).get(machine);
  if (runtime && !runtime.startsWith('containerd://')) {
    throw nodeError(`Node ${machine} runs ${runtime}, not containerd (kubectl get nodes -o wide).`, {
      hint: `Recreate the cluster with: minikube start -p ${profile} --container-runtime=containerd`,
    });
  }
}

/** Pins the node's host keys into ctrdbg's own known_hosts file for this machine, once. */
async function pinHostKey(file: string, host: string, port: number, nodeArgs: string[]): Promise<void> {
  const hostField = port === 22 ? host : `[${host}]:${port}`;
  if (await exists(file)) {
    const current = await readFile(file, 'utf8');
    // Same keys, new address (container drivers publish a new port on restart): re-label the lines.
    const lines = current.split('\n').filter(Boolean);
    if (lines.every((l) => l.startsWith(`${hostField} `))) return;
    const rewritten = lines.map((l) => `${hostField} ${l.split(/\s+/).slice(1).join(' ')}`);
    await writeFile(file, `${rewritten.join('\n')}\n`, { mode: 0o600 });
    return;
  }
  const keys = await minikube([
    'ssh',
    ...nodeArgs,
    '--',
    'cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_rsa_key.pub 2>/dev/null',
  ]);
  const lines = keys
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((parts) => parts.length >= 2 && /^(ssh-|ecdsa-)/.test(parts[0] ?? ''))
    .map((parts) => `${hostField} ${parts[0]} ${parts[1]}`);
  if (lines.length === 0) {
    throw environmentError(`Could not read the host keys of minikube node (${nodeArgs.join(' ')}).`, {
      hint: 'Check `minikube ssh` works for this node.',
    });
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
}
