/**
 * What a command needs to know about a node, whatever kind it is: how to reach it (an SSH endpoint), how
 * its containerd is managed (the lab's wrapper or systemd), and where things live on it.
 */
import type { SshEndpoint } from './remoteHost.js';

export type ServiceManager =
  /** The lab's stand-in for systemctl (scripts/lab/lab-service), run through sudo on the node. */
  | { kind: 'lab'; command: string; envFile: string }
  /** A systemd unit; the log level goes into a drop-in. */
  | { kind: 'systemd'; unit: string };

export interface MinikubeInfo {
  profile: string;
  /** minikube's node name ("" for the primary control plane in its config; shown as the machine name). */
  node: string;
  machine: string;
  driver: string;
  runtime: string;
  kubernetesVersion?: string;
}

export interface Target {
  /** Normalised spec: "lab", "lab:NAME", "minikube", "minikube:PROFILE", "ssh://USER@HOST:PORT". */
  spec: string;
  kind: 'lab' | 'minikube' | 'ssh';
  endpoint: SshEndpoint;
  service: ServiceManager;
  node: {
    /** containerd's gRPC socket on the node. */
    socket: string;
    /** Where ctrdbg keeps backups, dlv, the agent and its state file on the node. */
    ctrdbgDir: string;
    /** containerd's root directory (images, snapshots): where doctor checks free space. */
    containerdRoot: string;
    /**
     * A process lab's node directory on this machine. Its node is a directory, not a machine: ctrdbg replaces no
     * binary outside it (the machine's /usr/bin is shared by every lab and the machine itself).
     */
    root?: string;
  };
  minikube?: MinikubeInfo;
  /**
   * Lab targets: the lab's name, its containerd source tree (setup's default --src), its flavour, and the
   * toolchain lane it builds and debugs with (src/debugbuild/toolchain.ts). A VM lab has no lane of its own.
   */
  lab?: { name: string; tree: string; flavor?: 'stock' | 'cri'; lane?: 'bookworm' | 'trixie' };
}

export const SYSTEMD_SOCKET = '/run/containerd/containerd.sock';
export const SYSTEMD_UNIT = 'containerd.service';
export const SYSTEMD_ROOT = '/var/lib/containerd';
