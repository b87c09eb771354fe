/**
 * RemoteHost: the one seam between ctrdbg and a node. minikube, the lab and plain SSH hosts all resolve to
 * an `SshEndpoint`, and `connectHost` (src/nodes/ssh/sshConnection.ts, the only module importing ssh2) turns it
 * into a `RemoteHost`. Everything above this file speaks only this interface.
 */
import type { Duplex, Readable } from 'node:stream';

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** Private key file. */
  keyPath: string;
  /**
   * Host-key pinning: a known_hosts file whose entry for `[host]:port` (or `host` for port 22) must match.
   * For minikube and the lab this is a file ctrdbg writes from their own key files.
   */
  knownHostsPath: string;
  /** Human name for messages, e.g. "lab", "minikube (node minikube-m02)". */
  label: string;
  /** Seconds to wait for the TCP connection and SSH handshake. */
  readyTimeoutMs?: number;
  /** What to check when the node does not answer, from whoever resolved it (e.g. how to bring a lab up). */
  unreachableHint?: string;
}

export interface ExecOptions {
  /** Run through `sudo -n` (non-interactive: fails rather than prompting). */
  sudo?: boolean;
  /** Bytes written to the command's stdin, then stdin is closed. */
  stdin?: string | Buffer;
  /** Kill the channel after this many ms (default 120 s). */
  timeoutMs?: number;
  /** Environment assignments prepended as `env K=V …`. */
  env?: Record<string, string>;
  /**
   * Aborting stops the command: SIGTERM (relayed by sudo and `timeout` to its process group), SIGKILL after
   * `killGraceMs`. The exec then resolves with the command's own exit status if it reported one.
   */
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL when the command is stopped (default 1 s). */
  killGraceMs?: number;
}

export interface ExecResult {
  code: number;
  /** Signal name when the remote command was killed by one. */
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface UploadProgress {
  sent: number;
  total: number;
}

export interface UploadOptions {
  /** Final mode of the remote file, e.g. 0o755. */
  mode?: number;
  /** Write as root (through sudo). The file is first written to a temporary name, then renamed. */
  sudo?: boolean;
  onProgress?: (progress: UploadProgress) => void;
  /** Aborting stops the transfer; the partial file is removed and the upload rejects. */
  signal?: AbortSignal;
}

export interface UploadResult {
  path: string;
  bytes: number;
  sha256: string;
}

/** A long-running remote command whose stdio is a stream (e.g. a relay to Delve, or the dlv watchdog). */
export interface RemoteProcess {
  /** stdin (writable) + stdout (readable) of the remote command. */
  stream: Duplex;
  stderr: Readable;
  /** Resolves when the remote command exits (or the channel closes). */
  exited: Promise<{ code: number | null; signal?: string }>;
  /** Closes stdin (EOF), which the node agent treats as "detach and exit". */
  end(): void;
  /** Closes the channel outright. */
  close(): void;
}

export interface RemoteHost {
  readonly endpoint: SshEndpoint;
  /** Runs a shell command line (already quoted with `shellQuote`). */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Runs and throws a typed error (with stderr) when the exit code is not 0. */
  execChecked(command: string, options?: ExecOptions): Promise<string>;
  /** Starts a command with a bidirectional stream for its stdio. */
  spawn(command: string, options?: { sudo?: boolean }): Promise<RemoteProcess>;
  /** Streams a local file to `remotePath` (via a temporary name and rename), verifying sha256 on the node. */
  upload(localPath: string, remotePath: string, options?: UploadOptions): Promise<UploadResult>;
  /** Streams bytes to a remote command's stdin (e.g. `tar -x`), returning its result. */
  pipeTo(
    command: string,
    source: Readable,
    options?: { sudo?: boolean; timeoutMs?: number },
  ): Promise<ExecResult>;
  /** Opens a direct-tcpip channel to host:port as seen from the node (a local port forward's connection). */
  forward(remoteHost: string, remotePort: number): Promise<Duplex>;
  /** Checks passwordless sudo; throws `sudo` error with a hint when missing. */
  checkSudo(): Promise<void>;
  close(): Promise<void>;
  /** Fires once if the SSH connection drops unexpectedly. */
  onClose(listener: (error?: Error) => void): void;
}
