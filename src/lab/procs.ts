/** /proc walking for the lab: find what the lab started so `lab down` can leave nothing behind. */
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface ProcInfo {
  pid: number;
  ppid: number;
  exe: string;
  cmdline: string;
  tracerPid: number;
}

export async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
      .split('\0')
      .join(' ')
      .trim();
    const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
    return { pid, ppid: field('PPid'), exe, cmdline, tracerPid: field('TracerPid') };
  } catch {
    return undefined;
  }
}

export async function listProcs(): Promise<ProcInfo[]> {
  const entries = await readdir('/proc');
  const procs = await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map((e) => readProc(Number(e))));
  return procs.filter((p): p is ProcInfo => p !== undefined && p.pid !== process.pid);
}

/** Processes that belong to a lab: anything whose executable or command line lives in the lab's directory,
 *  plus every descendant of those. */
export async function labProcesses(labDir: string, roots: number[] = []): Promise<ProcInfo[]> {
  const prefix = labDir.endsWith('/') ? labDir : `${labDir}/`;
  const procs = await listProcs();
  const selected = new Map<number, ProcInfo>();
  for (const p of procs) {
    if (roots.includes(p.pid) || p.exe.startsWith(prefix) || p.cmdline.includes(prefix))
      selected.set(p.pid, p);
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!selected.has(p.pid) && selected.has(p.ppid)) {
        selected.set(p.pid, p);
        grew = true;
      }
    }
  }
  return [...selected.values()];
}
