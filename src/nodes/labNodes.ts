/**
 * The labs on this machine as nodes: where each lab lives (its paths), what its state file says, and the
 * endpoint and service a command reaches it by. Pure descriptions, read by target resolution; bringing labs up
 * and down is src/lab/.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labRoot } from '../config.js';
import { inputError } from '../errors.js';
import type { SshEndpoint } from './remoteHost.js';
import { SYSTEMD_ROOT, SYSTEMD_SOCKET, SYSTEMD_UNIT, type Target } from './target.js';

/** The UNIX user that logs into every lab over SSH (like minikube's `docker`). */
export const LAB_USER = 'ctrdbglab';

export interface LabPaths {
  dir: string;
  stateFile: string;
  ssh: {
    dir: string;
    hostKey: string;
    clientKey: string;
    authorizedKeys: string;
    knownHosts: string;
    config: string;
    pidFile: string;
    log: string;
  };
  node: {
    root: string;
    service: string;
    binary: string;
    config: string;
    envFile: string;
    socket: string;
    log: string;
    /** Where ctrdbg keeps its own files on this node (dlv, agent, backups, state). */
    ctrdbgDir: string;
    /** CRI lab only: the node's shim and ctr, the kubelet stand-in (wrapper and binary), pod logs, CNI dirs. */
    shim: string;
    ctr: string;
    kubelet: string;
    kubeletBinary: string;
    podLogs: string;
    cniBin: string;
    cniConf: string;
  };
  tree: string;
}

export type LabFlavor = 'stock' | 'cri';

export interface LabState {
  format: 1;
  name: string;
  createdAt: string;
  ssh: { host: '127.0.0.1'; port: number; user: string };
  stockSha256: string;
  /** Absent in labs made before flavours existed: 'stock'. */
  flavor?: LabFlavor;
  /** CRI labs: the trixie lane (its key) the node's files came from. */
  laneKey?: string;
}

export const labFlavor = (state: LabState | undefined): LabFlavor => state?.flavor ?? 'stock';
/** The toolchain lane each flavour builds and debugs with (src/debugbuild/toolchain.ts). */
export const laneOf = (flavor: LabFlavor) => (flavor === 'cri' ? 'trixie' : 'bookworm');

export function labPaths(name = 'default'): LabPaths {
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(name)) {
    throw inputError(`'${name}' is not a valid lab name.`, {
      hint: 'Use lower-case letters, digits and dashes, e.g. "default" or "dev-1".',
    });
  }
  const dir = join(labRoot(), name);
  const ssh = join(dir, 'ssh');
  const node = join(dir, 'node');
  return {
    dir,
    stateFile: join(dir, 'lab.json'),
    ssh: {
      dir: ssh,
      hostKey: join(ssh, 'ssh_host_ed25519_key'),
      clientKey: join(ssh, 'id_ed25519'),
      authorizedKeys: join(ssh, 'authorized_keys'),
      knownHosts: join(ssh, 'known_hosts'),
      config: join(ssh, 'sshd_config'),
      pidFile: join(ssh, 'sshd.pid'),
      log: join(ssh, 'sshd.log'),
    },
    node: {
      root: node,
      service: join(node, 'usr/local/sbin/lab-service'),
      binary: join(node, 'usr/bin/containerd'),
      config: join(node, 'etc/containerd/config.toml'),
      envFile: join(node, 'etc/ctrdbg-lab/containerd.env'),
      socket: join(node, 'run/containerd/containerd.sock'),
      log: join(node, 'var/log/containerd.log'),
      ctrdbgDir: join(node, 'opt/ctrdbg'),
      shim: join(node, 'usr/bin/containerd-shim-runc-v2'),
      ctr: join(node, 'usr/bin/ctr'),
      kubelet: join(node, 'usr/local/bin/ctrdbg-kubelet'),
      kubeletBinary: join(node, 'usr/local/lib/ctrdbg/ctrdbg-kubelet'),
      podLogs: join(node, 'var/log/pods'),
      cniBin: join(node, 'opt/cni/bin'),
      cniConf: join(node, 'etc/cni/net.d'),
    },
    tree: join(dir, 'tree'),
  };
}

export async function readLabState(paths: LabPaths): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(paths.stateFile, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export const VM_CTRDBG_DIR = '/var/lib/ctrdbg';

export interface VmImagePaths {
  /** `<lab>/vm` */
  dir: string;
  rootfs: string;
  /** debootstrap's package cache: a rebuild downloads nothing. */
  debs: string;
  disk: string;
  kernel: string;
  initrd: string;
  record: string;
  clientKey: string;
  hostKey: string;
}

export interface VmPaths {
  dir: string;
  stateFile: string;
  image: VmImagePaths;
  overlay: string;
  pidFile: string;
  console: string;
  knownHosts: string;
  tree: string;
}

export interface VmState {
  format: 1;
  kind: 'vm';
  name: string;
  createdAt: string;
  ssh: { host: '127.0.0.1'; port: number; user: string };
  qemu: { pid: number; accel: 'kvm' | 'tcg'; startedAt: string; command: string[] };
  /** The image the overlay was made from (its builtAt); a rebuilt image needs a new overlay. */
  imageBuiltAt: string;
  stockSha256: string;
}

export function vmPaths(name: string): VmPaths {
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(name)) {
    throw inputError(`'${name}' is not a valid lab name.`, {
      hint: 'Use lower-case letters, digits and dashes, e.g. "vm" or "vm-2".',
    });
  }
  const dir = join(labRoot(), name);
  const vm = join(dir, 'vm');
  const ssh = join(dir, 'ssh');
  return {
    dir,
    stateFile: join(dir, 'vm.json'),
    image: {
      dir: vm,
      rootfs: join(vm, 'rootfs'),
      debs: join(vm, 'debs'),
      disk: join(vm, 'disk.img'),
      kernel: join(vm, 'vmlinuz'),
      initrd: join(vm, 'initrd.img'),
      record: join(vm, 'image.json'),
      clientKey: join(ssh, 'id_ed25519'),
      hostKey: join(vm, 'ssh_host_ed25519_key'),
    },
    overlay: join(vm, 'node.qcow2'),
    pidFile: join(vm, 'qemu.pid'),
    console: join(vm, 'console.log'),
    knownHosts: join(ssh, 'known_hosts'),
    tree: join(dir, 'tree'),
  };
}

export async function readVmState(name: string): Promise<VmState | undefined> {
  try {
    const state = JSON.parse(await readFile(vmPaths(name).stateFile, 'utf8')) as VmState;
    return state.kind === 'vm' ? state : undefined;
  } catch {
    return undefined;
  }
}

/** A lab is a VM lab when its directory holds vm.json. */
export async function isVmLab(name: string): Promise<boolean> {
  return (await readVmState(name)) !== undefined;
}

/** A lab's target string. */
export const labelOf = (name: string) => `lab:${name}`;

export function vmEndpoint(name: string, state: VmState): SshEndpoint {
  const paths = vmPaths(name);
  return {
    host: state.ssh.host,
    port: state.ssh.port,
    user: state.ssh.user,
    keyPath: paths.image.clientKey,
    knownHostsPath: paths.knownHosts,
    label: labelOf(name),
  };
}

/** `lab:NAME` for a VM lab: a systemd node like minikube's, with the lab's source tree on this machine. */
export function vmTarget(name: string, state: VmState): Target {
  return {
    spec: labelOf(name),
    kind: 'lab',
    endpoint: vmEndpoint(name, state),
    service: { kind: 'systemd', unit: SYSTEMD_UNIT },
    node: { socket: SYSTEMD_SOCKET, ctrdbgDir: VM_CTRDBG_DIR, containerdRoot: SYSTEMD_ROOT },
    lab: { name, tree: vmPaths(name).tree },
  };
}
