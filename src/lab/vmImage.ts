/**
 * The VM lab's disk image: a Debian bookworm root file system made with debootstrap from Debian's archive
 * (the mirror apt already uses on this machine; nothing else is reached), configured like a minikube node
 * (user `docker` with passwordless sudo and the lab's key, key-only sshd, containerd + runc as systemd
 * units), then packed into a raw ext4 image with `mkfs.ext4 -d` — no loop mount, no root-only kernel
 * features beyond chroot. The kernel and initrd are copied out for QEMU's direct kernel boot.
 *
 * Built once and cached beside the lab (`<lab>/vm/`); `image.json` is written last, so a build that was cut
 * short is never taken for a finished one.
 */
import { chmod, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { environmentError, inputError } from '../errors.js';
import type { VmImagePaths } from '../nodes/labNodes.js';
import { run, runChecked } from '../util/exec.js';
import { exists, sha256File } from '../util/fsx.js';
import type { Logger } from '../util/output.js';

/** Bump when the recipe changes: an image built by an older recipe is rebuilt on the next `lab up --vm`. */
export const VM_RECIPE = 3;
export const VM_SUITE = 'bookworm';
export const VM_USER = 'docker';
/** ext4 image size; sparse, ~1.5 GiB allocated. Leaves well over doctor's 1 GiB free for containerd. */
const DISK_SIZE = '6G';

/**
 * What the node needs: an init and udev so it boots, sshd + sudo for ctrdbg, containerd + runc as the node's
 * runtime, a kernel, `ss`/`ps` for inspection, and Debian's containerd library source so setup's source sync
 * finds /usr/share/gocode/src already there instead of pushing ~390 MB through QEMU's user network.
 */
export const VM_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'udev',
  'dbus',
  'openssh-server',
  'sudo',
  'containerd',
  'runc',
  'linux-image-amd64',
  'iproute2',
  'procps',
  'ca-certificates',
];

export interface VmImageRecord {
  format: 1;
  recipe: number;
  builtAt: string;
  seconds: number;
  mirror: string;
  suite: string;
  packages: string[];
  /** sha256 of Debian's /usr/bin/containerd inside the image: what `restore` must bring back. */
  stockSha256: string;
  containerdVersion: string;
  /** The VM's SSH host key (public), generated at build time and pinned into the lab's known_hosts. */
  hostKeyPub: string;
  /** Go source packages aligned with this machine's (name=version), or why not. */
  gocode: { aligned: string[]; note?: string };
}

export async function readImageRecord(paths: VmImagePaths): Promise<VmImageRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(paths.record, 'utf8')) as VmImageRecord;
    if (record.recipe !== VM_RECIPE) return undefined;
    for (const f of [paths.disk, paths.kernel, paths.initrd]) if (!(await exists(f))) return undefined;
    return record;
  } catch {
    return undefined;
  }
}

/** The Debian mirror apt uses here (deb822 `.sources` first, then a classic sources.list). */
export async function debianMirror(): Promise<string> {
  if (process.env.CTRDBG_VM_MIRROR) return process.env.CTRDBG_VM_MIRROR;
  const candidates: string[] = [];
  const dir = '/etc/apt/sources.list.d';
  for (const f of (await readdir(dir).catch(() => [])).sort()) {
    if (f.endsWith('.sources')) candidates.push(await readFile(join(dir, f), 'utf8'));
  }
  for (const text of candidates) {
    for (const m of text.matchAll(/^URIs:\s*(\S+)/gm)) {
      const uri = m[1] ?? '';
      // The main archive, not debian-security or a third-party repository.
      if (/\/debian\/?$/.test(uri)) return uri;
    }
  }
  const list = await readFile('/etc/apt/sources.list', 'utf8').catch(() => '');
  const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian\/?)\s+bookworm\b/m.exec(list);
  if (m?.[1]) return m[1];
  throw environmentError('Could not find the Debian mirror apt uses on this machine.', {
    hint: 'Set CTRDBG_VM_MIRROR to a Debian archive URL, e.g. http://deb.debian.org/debian',
  });
}

const elapsed = (start: number) => {
  const s = Math.round((Date.now() - start) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

/** Runs a long step with a line every 15 s, so a slow download never looks like a hang. */
async function longStep<T>(log: Logger, label: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  log.step(label);
  const ticker = setInterval(() => log.info(`  … ${elapsed(start)}`), 15_000);
  try {
    const result = await fn();
    log.info(`  done in ${elapsed(start)}`);
    return result;
  } finally {
    clearInterval(ticker);
  }
}

export async function checkImageTools(): Promise<void> {
  for (const [tool, pkg] of [
    ['debootstrap', 'debootstrap'],
    ['mkfs.ext4', 'e2fsprogs'],
    ['chroot', 'coreutils'],
  ] as const) {
    const found = await run('sh', ['-c', `command -v ${tool}`]);
    if (found.exitCode !== 0) {
      throw environmentError(`'${tool}' is needed to build the VM lab's image and is not installed.`, {
        hint: `Install it: apt-get install ${pkg} (or run 'make deps').`,
      });
    }
  }
}

/** dpkg-query's format: its own ${…} fields, not a JavaScript template. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's field syntax, expanded by dpkg-query
const DPKG_NAME_VERSION = '${Package}=${Version}\n';

/** The Go source packages this machine has under /usr/share/gocode/src, as name=version. */
async function hostGocodePackages(): Promise<string[]> {
  const owners = await run('dpkg-query', ['-S', '/usr/share/gocode/src']);
  if (owners.exitCode !== 0) return [];
  const names = (owners.stdout.split(':')[0] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) return [];
  const versions = await run('dpkg-query', ['-W', '-f', DPKG_NAME_VERSION, ...names]);
  return versions.stdout.split('\n').filter((l) => l.includes('='));
}

async function chroot(rootfs: string, args: string[], what: string, timeout = 600_000): Promise<string> {
  return runChecked(
    'chroot',
    [rootfs, ...args],
    (d) => environmentError(`${what} failed in the image: ${d}`),
    {
      timeout,
      env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    },
  );
}

/**
 * Puts this machine's Debian Go source tree (/usr/share/gocode/src, which the lab tree builds from) into the
 * image with its mtimes, so setup's quick check (size + mtime) finds it unchanged on the node and does not push
 * ~390 MB through QEMU's emulated network. Copying beats installing the ~100 golang-*-dev packages with
 * debootstrap (minutes) and matches this machine's versions exactly.
 */
async function copyGocode(rootfs: string, log: Logger): Promise<VmImageRecord['gocode']> {
  const src = '/usr/share/gocode/src';
  if (!(await exists(src))) return { aligned: [], note: `${src} is not on this machine` };
  return longStep(log, `copying ${src} into the image`, async () => {
    await mkdir(join(rootfs, 'usr/share/gocode'), { recursive: true });
    await runChecked(
      'cp',
      ['-a', src, join(rootfs, 'usr/share/gocode/')],
      (d) => environmentError(`copying ${src} failed: ${d}`),
      {
        timeout: 600_000,
      },
    );
    return { aligned: await hostGocodePackages() };
  });
}

async function write(rootfs: string, path: string, content: string, mode = 0o644): Promise<void> {
  const full = join(rootfs, path);
  await mkdir(join(full, '..'), { recursive: true });
  await writeFile(full, content, { mode });
  await chmod(full, mode);
}

/** Everything that makes the bare root file system a minikube-like node. */
async function configureRootfs(paths: VmImagePaths, hostname: string): Promise<void> {
  const r = paths.rootfs;
  await write(r, 'etc/hostname', `${hostname}\n`);
  await write(r, 'etc/hosts', `127.0.0.1 localhost\n127.0.1.1 ${hostname}\n`);
  await write(r, 'etc/fstab', '/dev/vda / ext4 rw,errors=remount-ro 0 1\n');
  // QEMU's user network hands out 10.0.2.15 by DHCP; its resolver is 10.0.2.3 (nothing to resolve: restrict=on).
  await write(
    r,
    'etc/systemd/network/20-ctrdbg-dhcp.network',
    '[Match]\nName=eth* en*\n\n[Network]\nDHCP=ipv4\n',
  );
  await rm(join(r, 'etc/resolv.conf'), { force: true });
  await write(r, 'etc/resolv.conf', 'nameserver 10.0.2.3\n');

  // The user minikube's machines have: passwordless sudo, key-only login.
  const hasUser = await run('chroot', [r, 'id', '-u', VM_USER]);
  if (hasUser.exitCode !== 0) {
    await chroot(
      r,
      ['useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'sudo', VM_USER],
      'useradd',
    );
  }
  // '*' rather than a locked '!': no password exists, yet the account is not "locked" for sshd.
  await chroot(r, ['usermod', '-p', '*', VM_USER], 'usermod');
  await write(r, `etc/sudoers.d/${VM_USER}`, `${VM_USER} ALL=(ALL) NOPASSWD:ALL\n`, 0o440);
  const pub = await readFile(`${paths.clientKey}.pub`, 'utf8');
  await write(r, `home/${VM_USER}/.ssh/authorized_keys`, pub, 0o600);
  await chmod(join(r, `home/${VM_USER}/.ssh`), 0o700);
  await chroot(r, ['chown', '-R', `${VM_USER}:${VM_USER}`, `/home/${VM_USER}/.ssh`], 'chown');

  // One host key, made for this build (openssh's postinst made others, identical for nobody to trust).
  for (const f of await readdir(join(r, 'etc/ssh'))) {
    if (f.startsWith('ssh_host_')) await rm(join(r, 'etc/ssh', f), { force: true });
  }
  await copyFile(paths.hostKey, join(r, 'etc/ssh/ssh_host_ed25519_key'));
  await chmod(join(r, 'etc/ssh/ssh_host_ed25519_key'), 0o600);
  await copyFile(`${paths.hostKey}.pub`, join(r, 'etc/ssh/ssh_host_ed25519_key.pub'));
  await write(
    r,
    'etc/ssh/sshd_config.d/ctrdbg.conf',
    [
      '# ctrdbg VM lab: key-only login for the node user, like minikube.',
      'HostKey /etc/ssh/ssh_host_ed25519_key',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${VM_USER}`,
      'UseDNS no',
      '',
    ].join('\n'),
  );

  // Units: networking, sshd and containerd on; boot-time waits and periodic jobs off (a TCG guest is slow).
  const systemctl = (args: string[]) =>
    runChecked('systemctl', [`--root=${r}`, ...args], (d) => environmentError(`systemctl ${args[0]}: ${d}`));
  await systemctl(['enable', 'systemd-networkd.service', 'ssh.service', 'containerd.service']);
  await systemctl([
    'mask',
    'systemd-networkd-wait-online.service',
    'apt-daily.timer',
    'apt-daily-upgrade.timer',
    'e2scrub_all.timer',
    'fstrim.timer',
  ]);
  await rm(join(r, 'var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(join(r, 'var/cache/apt/archives/partial'), { recursive: true });
}

async function kernelFiles(rootfs: string): Promise<{ kernel: string; initrd: string }> {
  const boot = await readdir(join(rootfs, 'boot'));
  const kernel = boot
    .filter((f) => f.startsWith('vmlinuz-'))
    .sort()
    .pop();
  const initrd = boot
    .filter((f) => f.startsWith('initrd.img-'))
    .sort()
    .pop();
  if (!kernel || !initrd) {
    throw environmentError('The image has no kernel or initrd under /boot.', {
      hint: 'debootstrap did not finish installing linux-image-amd64; rebuild with: ctrdbg lab up --vm --rebuild',
    });
  }
  return { kernel: join(rootfs, 'boot', kernel), initrd: join(rootfs, 'boot', initrd) };
}

export interface BuildImageOptions {
  hostname: string;
}

/** Builds the image from scratch (minus cached .debs). Needs root: debootstrap and chroot. */
export async function buildVmImage(
  paths: VmImagePaths,
  options: BuildImageOptions,
  log: Logger,
): Promise<VmImageRecord> {
  if (process.getuid?.() !== 0) {
    throw environmentError("Building the VM lab's image needs root (debootstrap, chroot).", {
      hint: 'Run it as root: sudo ctrdbg lab up --vm',
    });
  }
  await checkImageTools();
  const mirror = await debianMirror();
  const start = Date.now();
  log.step(`building the VM image (Debian ${VM_SUITE} from ${mirror}) in ${paths.dir}`);
  await rm(paths.record, { force: true });
  await rm(paths.rootfs, { recursive: true, force: true });
  await mkdir(paths.debs, { recursive: true });

  await longStep(
    log,
    `[1/5] debootstrap ${VM_SUITE}: ${VM_PACKAGES.length} packages and their dependencies`,
    () =>
      runChecked(
        'debootstrap',
        [
          '--variant=minbase',
          `--cache-dir=${paths.debs}`,
          `--include=${VM_PACKAGES.join(',')}`,
          VM_SUITE,
          paths.rootfs,
          mirror,
        ],
        (d) =>
          environmentError(`debootstrap failed: ${d}`, {
            hint: `Check that ${mirror} is reachable (apt-get update), then: ctrdbg lab up --vm --rebuild`,
          }),
        { timeout: 1_800_000 },
      ),
  );

  log.step('[2/5] Go source tree');
  const gocode = await copyGocode(paths.rootfs, log);

  log.step(`[3/5] configuring: user ${VM_USER}, sudo, key-only sshd, network, services`);
  await configureRootfs(paths, options.hostname);

  log.step('[4/5] kernel and initrd for direct boot');
  const k = await kernelFiles(paths.rootfs);
  await copyFile(k.kernel, paths.kernel);
  await copyFile(k.initrd, paths.initrd);
  const stockBinary = join(paths.rootfs, 'usr/bin/containerd');
  if (!(await exists(stockBinary))) throw inputError('The image has no /usr/bin/containerd.');
  const stockSha256 = await sha256File(stockBinary);
  const version = await run('chroot', [paths.rootfs, '/usr/bin/containerd', '--version'], {
    timeout: 30_000,
  });

  await longStep(log, `[5/5] mkfs.ext4 -d → ${paths.disk} (${DISK_SIZE}, sparse)`, async () => {
    await rm(paths.disk, { force: true });
    await runChecked(
      'mkfs.ext4',
      ['-q', '-F', '-L', 'ctrdbg-root', '-d', paths.rootfs, paths.disk, DISK_SIZE],
      (d) =>
        environmentError(`mkfs.ext4 failed: ${d}`, { hint: 'mkfs.ext4 -d needs e2fsprogs 1.43 or later.' }),
      { timeout: 600_000 },
    );
  });
  // The image holds everything now; the directory tree is 1.5 GB of duplicate.
  await rm(paths.rootfs, { recursive: true, force: true });

  const record: VmImageRecord = {
    format: 1,
    recipe: VM_RECIPE,
    builtAt: new Date().toISOString(),
    seconds: Math.round((Date.now() - start) / 1000),
    mirror,
    suite: VM_SUITE,
    packages: VM_PACKAGES,
    stockSha256,
    containerdVersion: version.stdout.trim(),
    hostKeyPub: (await readFile(`${paths.hostKey}.pub`, 'utf8')).trim(),
    gocode,
  };
  await writeFile(paths.record, `${JSON.stringify(record, null, 2)}\n`);
  log.step(`VM image built in ${elapsed(start)}`);
  return record;
}
