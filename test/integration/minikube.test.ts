/**
 * minikube targets, resolved by ctrdbg's real code through stand-in `minikube`, `docker` and `kubectl`
 * executables on PATH that print what the real CLIs print and point at the lab (real sshd, sudo,
 * containerd). Covers the docker driver (127.0.0.1 + published port), a VM driver (IP:22), a multi-node
 * profile, and clusters that do not run containerd.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

const VM_IP = '127.0.0.22';
let dir: string;
let env: Record<string, string>;
let lab: LabStatusJson;
let forwarder: Server;

function node(name: string, controlPlane: boolean) {
  return {
    Name: name,
    IP: '192.168.49.2',
    Port: controlPlane ? 8443 : 0,
    KubernetesVersion: 'v1.30.0',
    ContainerRuntime: 'containerd',
    ControlPlane: controlPlane,
    Worker: true,
  };
}

function profile(name: string, driver: string, runtime: string, nodes: ReturnType<typeof node>[]) {
  return {
    Name: name,
    Status: 'Running',
    Config: {
      Name: name,
      Driver: driver,
      KubernetesConfig: { KubernetesVersion: 'v1.30.0', ClusterName: name, ContainerRuntime: runtime },
      Nodes: nodes,
    },
    Active: name === 'minikube',
  };
}

beforeAll(async () => {
  lab = await labStatus();
  dir = await mkdtemp(join(tmpdir(), 'ctrdbg-minikube-'));
  const hostKeyPub = (await readFile(join(lab.dir, 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8')).trim();
  const machines: Record<string, { ip: string; keyPath: string; hostKeyPub: string }> = {};
  for (const [machine, ip] of [
    ['minikube', '192.168.49.2'],
    ['minikube-m02', '192.168.49.3'],
    ['vm', VM_IP],
    ['dockerrt', '192.168.58.2'],
  ] as const) {
    // What minikube keeps per machine: the key it generated and libmachine's config.json naming the SSH user.
    const machineDir = join(dir, '.minikube', 'machines', machine);
    await mkdir(machineDir, { recursive: true });
    await copyFile(lab.ssh.keyPath, join(machineDir, 'id_rsa'));
    await writeFile(
      join(machineDir, 'config.json'),
      JSON.stringify({
        ConfigVersion: 3,
        Driver: { MachineName: machine, SSHUser: lab.ssh.user, SSHPort: 22 },
      }),
    );
    machines[machine] = { ip, keyPath: join(machineDir, 'id_rsa'), hostKeyPub };
  }
  const config = {
    profileList: {
      invalid: [],
      valid: [
        profile('minikube', 'docker', 'containerd', [node('', true), node('m02', false)]),
        profile('vm', 'kvm2', 'containerd', [node('', true)]),
        profile('dockerrt', 'docker', 'docker', [node('', true)]),
      ],
    },
    machines,
    dockerPorts: { minikube: lab.ssh.port, 'minikube-m02': lab.ssh.port, dockerrt: lab.ssh.port },
  };
  await writeFile(join(dir, 'standin.json'), JSON.stringify(config));
  // A VM driver's node answers SSH on IP:22; here that address forwards to the lab's sshd.
  forwarder = createServer((client) => {
    const upstream = connect(lab.ssh.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => forwarder.once('error', reject).listen(22, VM_IP, resolve));
  env = {
    ...labEnv(),
    CTRDBG_STANDIN_CONFIG: join(dir, 'standin.json'),
    CTRDBG_CONFIG_DIR: join(dir, 'config'),
    PATH: `${join(repoRoot, 'test/fixtures/standin')}:${process.env.PATH}`,
  };
});

afterAll(async () => {
  await new Promise<void>((resolve) => (forwarder ? forwarder.close(() => resolve()) : resolve()));
  await rm(dir, { recursive: true, force: true });
});

interface DoctorJson {
  target: string;
  ok: boolean;
  checks: { id: string; status: string; detail: string }[];
}

const standinLog = async () => readFile(join(dir, 'standin.json.log'), 'utf8').catch(() => '');

describe('minikube targets (stand-in CLIs, real lab behind them)', () => {
  it('docker driver: reaches 127.0.0.1 on the port `docker port` publishes', async () => {
    const { exitCode, data, stderr } = await ctrdbgJson<DoctorJson>(['doctor', 'minikube'], { env });
    const byId = Object.fromEntries(data.checks.map((c) => [c.id, c]));
    expect(byId.reachable?.status, stderr).toBe('ok');
    expect(byId.reachable?.detail).toBe(`${lab.ssh.user}@127.0.0.1:${lab.ssh.port}, host key pinned`);
    expect(byId.runtime?.detail).toBe('profile minikube: containerd');
    expect(data.target).toBe('minikube');
    expect([0, 11]).toContain(exitCode);
    expect(await standinLog()).toContain('docker port minikube 22');
    // The host key was pinned from the node's own key file into ctrdbg's known_hosts.
    const pinned = await readFile(join(dir, 'config', 'known_hosts', 'minikube-minikube'), 'utf8');
    expect(pinned).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${lab.ssh.port} ssh-ed25519 `));
  });

  it('VM driver (kvm2): reaches `minikube ip` on port 22', async () => {
    const { data } = await ctrdbgJson<DoctorJson>(['doctor', 'minikube:vm'], { env });
    const reachable = data.checks.find((c) => c.id === 'reachable');
    expect(reachable?.status).toBe('ok');
    expect(reachable?.detail).toBe(`${lab.ssh.user}@${VM_IP}:22, host key pinned`);
    expect(data.target).toBe('minikube:vm');
    expect(await standinLog()).toContain('minikube ip -p vm -n vm');
    const pinned = await readFile(join(dir, 'config', 'known_hosts', 'minikube-vm'), 'utf8');
    expect(pinned.startsWith(`${VM_IP} ssh-ed25519 `)).toBe(true);
  });

  it('multi-node: --node picks the node, by minikube name or machine name', async () => {
    for (const nodeName of ['m02', 'minikube-m02']) {
      const { data } = await ctrdbgJson<DoctorJson>(['doctor', 'minikube', '--node', nodeName], { env });
      expect(data.checks.find((c) => c.id === 'reachable')?.status).toBe('ok');
    }
    const log = await standinLog();
    expect(log).toContain('minikube ssh-key -p minikube -n minikube-m02');
    const missing = await ctrdbg(['doctor', 'minikube', '--node', 'm09'], { env });
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toContain("has no node 'm09' (nodes: minikube, minikube-m02)");
  });

  it('refuses a cluster that runs docker, with the fix', async () => {
    const result = await ctrdbg(['setup', 'minikube:dockerrt'], { env });
    expect(result.exitCode).toBe(11);
    expect(result.stderr).toContain("runs the 'docker' container runtime, not containerd");
    expect(result.stderr).toContain('--container-runtime=containerd');
  });

  it("refuses when kubectl shows the node's runtime is not containerd", async () => {
    const config = JSON.parse(await readFile(env.CTRDBG_STANDIN_CONFIG as string, 'utf8'));
    config.kubectlRuntimes = { minikube: 'docker://24.0.7' };
    const other = join(dir, 'standin-kubectl.json');
    await writeFile(other, JSON.stringify(config));
    const result = await ctrdbg(['doctor', 'minikube'], { env: { ...env, CTRDBG_STANDIN_CONFIG: other } });
    expect(result.exitCode).toBe(11);
    expect(result.stderr).toContain('runs docker://24.0.7, not containerd');
  });

  it('names the profiles that exist when the one asked for does not', async () => {
    const result = await ctrdbg(['doctor', 'minikube:nope'], { env });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain("There is no minikube profile 'nope' (profiles: minikube, vm, dockerrt)");
  });

  it('says what to do when minikube is not installed', async () => {
    const result = await ctrdbg(['doctor', 'minikube'], { env: { ...env, PATH: '/usr/bin:/bin' } });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain("'minikube' is not installed");
  });
});
