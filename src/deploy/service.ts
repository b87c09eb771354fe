/**
 * containerd's service on the node, whoever manages it: systemd (minikube, VMs, SSH hosts) or the lab's
 * wrapper. Setup, restore, doctor and attach only use this interface.
 */
import { nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { ServiceManager } from '../nodes/target.js';
import { shellJoin, shellQuote } from '../util/shell.js';

export const DROP_IN_NAME = '50-ctrdbg.conf';

export interface ServiceControl {
  readonly description: string;
  /** The main PID, 0 when not running. */
  mainPid(): Promise<number>;
  isActive(): Promise<boolean>;
  restart(): Promise<void>;
  /** Starts it if it is not running (used to recover after a failed restart). */
  start(): Promise<void>;
  /** Sets containerd's log level the way this manager does it; `undefined` removes ctrdbg's setting. */
  setLogLevel(level: string | undefined): Promise<{ path: string; changed: boolean }>;
  /** The log level ctrdbg set, if any. */
  logLevel(): Promise<string | undefined>;
  /**
   * Where containerd's log ends now (a journal cursor, or a byte offset of the lab's log file): passed to
   * `recentLog` so an error quotes only what the current start wrote.
   */
  logMark(): Promise<string | undefined>;
  /** The last lines of containerd's log (only those after `since`, when given), for error messages. */
  recentLog(lines?: number, since?: string): Promise<string>;
}

export function serviceControl(host: RemoteHost, manager: ServiceManager): ServiceControl {
  return manager.kind === 'lab' ? labService(host, manager) : systemdService(host, manager.unit);
}

function labService(host: RemoteHost, m: Extract<ServiceManager, { kind: 'lab' }>): ServiceControl {
  const svc = (action: string) => `${shellQuote(m.command)} ${action}`;
  // A stop+start must finish even if the SSH channel dies half way (Ctrl-C, dropped link): run it in its own
  // session with its output in a file, so neither SIGHUP nor SIGPIPE can cut it between stop and start.
  const detached = (action: string) =>
    `out=$(mktemp) && setsid -w ${svc(action)} </dev/null >"$out" 2>&1; rc=$?; cat "$out"; rm -f "$out"; exit $rc`;
  const labLogFile = async () => {
    const show = await host.exec(svc('show'), { sudo: true });
    return /^Log=(.*)$/m.exec(show.stdout)?.[1];
  };
  return {
    description: `lab service ${m.command}`,
    async mainPid() {
      const out = await host.exec(svc('main-pid'), { sudo: true });
      return Number(out.stdout.trim()) || 0;
    },
    async isActive() {
      return (await host.exec(svc('is-active'), { sudo: true })).code === 0;
    },
    async restart() {
      const r = await host.exec(detached('restart'), { sudo: true, timeoutMs: 90_000 });
      if (r.code !== 0) throw nodeError(`containerd did not restart: ${(r.stderr || r.stdout).trim()}`);
    },
    async start() {
      const r = await host.exec(detached('start'), { sudo: true, timeoutMs: 90_000 });
      if (r.code !== 0) throw nodeError(`containerd did not start: ${(r.stderr || r.stdout).trim()}`);
    },
    async setLogLevel(level) {
      const content = `LOG_LEVEL=${level ?? 'info'}\n`;
      const current = (await host.exec(`cat ${shellQuote(m.envFile)}`, { sudo: true })).stdout;
      if (current === content) return { path: m.envFile, changed: false };
      await host.execChecked(`tee ${shellQuote(m.envFile)} >/dev/null`, { sudo: true, stdin: content });
      return { path: m.envFile, changed: true };
    },
    async logLevel() {
      const current = (await host.exec(`cat ${shellQuote(m.envFile)}`, { sudo: true })).stdout;
      const level = /^LOG_LEVEL=(\S+)/m.exec(current)?.[1];
      return level && level !== 'info' ? level : undefined;
    },
    async logMark() {
      const log = await labLogFile();
      if (!log) return undefined;
      const size = await host.exec(`stat -c %s ${shellQuote(log)}`, { sudo: true });
      return size.code === 0 ? size.stdout.trim() : '0';
    },
    async recentLog(lines = 10, since) {
      const log = await labLogFile();
      if (!log) return '';
      const from = since && /^\d+$/.test(since) ? `tail -c +${Number(since) + 1} ${shellQuote(log)} | ` : '';
      const read = from ? `${from}tail -n ${lines}` : `tail -n ${lines} ${shellQuote(log)}`;
      return (await host.exec(read, { sudo: true })).stdout;
    },
  };
}

function systemdService(host: RemoteHost, unit: string): ServiceControl {
  const dropInDir = `/etc/systemd/system/${unit}.d`;
  const dropIn = `${dropInDir}/${DROP_IN_NAME}`;
  return {
    description: `systemd unit ${unit}`,
    async mainPid() {
      const out = await host.exec(shellJoin(['systemctl', 'show', '-p', 'MainPID', '--value', unit]));
      return Number(out.stdout.trim()) || 0;
    },
    async isActive() {
      return (await host.exec(shellJoin(['systemctl', 'is-active', '--quiet', unit]))).code === 0;
    },
    async restart() {
      const r = await host.exec(shellJoin(['systemctl', 'restart', unit]), {
        sudo: true,
        timeoutMs: 120_000,
      });
      if (r.code !== 0) throw nodeError(`systemctl restart ${unit} failed: ${(r.stderr || r.stdout).trim()}`);
    },
    async start() {
      const r = await host.exec(shellJoin(['systemctl', 'start', unit]), { sudo: true, timeoutMs: 120_000 });
      if (r.code !== 0) throw nodeError(`systemctl start ${unit} failed: ${(r.stderr || r.stdout).trim()}`);
    },
    async setLogLevel(level) {
      const current = await host.exec(`cat ${shellQuote(dropIn)}`, { sudo: true });
      if (level === undefined) {
        if (current.code !== 0) return { path: dropIn, changed: false };
        await host.execChecked(`rm -f ${shellQuote(dropIn)} && systemctl daemon-reload`, { sudo: true });
        return { path: dropIn, changed: true };
      }
      // ExecStart must be cleared before it can be replaced; the binary path stays the unit's own.
      const execStart = (
        await host.exec(shellJoin(['systemctl', 'show', '-p', 'ExecStart', '--value', unit]))
      ).stdout;
      const path = /path=([^ ;]+)/.exec(execStart)?.[1] ?? '/usr/bin/containerd';
      const argv = /argv\[\]=([^;]+)/.exec(execStart)?.[1]?.trim().split(/\s+/).slice(1) ?? [];
      const args = stripLogLevel(argv);
      const content = [
        '# Written by ctrdbg setup; removed by ctrdbg restore.',
        '[Service]',
        'ExecStart=',
        `ExecStart=${[path, ...args, '--log-level', level].join(' ')}`,
        '',
      ].join('\n');
      if (current.code === 0 && current.stdout === content) return { path: dropIn, changed: false };
      await host.execChecked(
        `mkdir -p ${shellQuote(dropInDir)} && tee ${shellQuote(dropIn)} >/dev/null && systemctl daemon-reload`,
        { sudo: true, stdin: content },
      );
      return { path: dropIn, changed: true };
    },
    async logLevel() {
      const current = await host.exec(`cat ${shellQuote(dropIn)}`, { sudo: true });
      if (current.code !== 0) return undefined;
      return /--log-level (\S+)/.exec(current.stdout)?.[1];
    },
    async logMark() {
      const r = await host.exec(
        shellJoin(['journalctl', '-u', unit, '-n', '0', '--show-cursor', '--no-pager']),
        {
          sudo: true,
        },
      );
      return /^-- cursor: (\S+)/m.exec(r.stdout)?.[1];
    },
    async recentLog(lines = 10, since) {
      const args = ['journalctl', '-u', unit, '-n', String(lines), '--no-pager', '-o', 'cat'];
      if (since) args.push('--after-cursor', since);
      return (await host.exec(shellJoin(args), { sudo: true })).stdout;
    },
  };
}

/** Removes `--log-level X`, `-l X` and `--log-level=X` so ctrdbg's level is the only one. */
export function stripLogLevel(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--log-level' || a === '-l') {
      i++;
      continue;
    }
    if (a.startsWith('--log-level=')) continue;
    out.push(a);
  }
  return out;
}
