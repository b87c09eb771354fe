/**
 * VS Code's .vscode/launch.json: the entries ctrdbg writes (replay a recording through `ctrdbg dap`, attach to the
 * live hand-over with Go's `mode: remote`), and a merge that keeps the user's own entries and comments' absence
 * in mind (JSONC in, JSON out, written atomically).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { inputError } from '../errors.js';
import type { RecordingHeader } from '../recording/format.js';

export interface LaunchConfiguration {
  name: string;
  type: string;
  request: 'launch' | 'attach';
  [key: string]: unknown;
}

/** vscode-go's convention: `from` is the local path, `to` the path on the remote (as compiled in). */
export interface SubstitutePathRule {
  from: string;
  to: string;
}

/** Where the lab builds containerd from (Debian's library source, GOPATH mode). */
export const LAB_REMOTE_SOURCE = '/usr/share/gocode/src/github.com/containerd/containerd';
/** VS Code's variable for the opened folder. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: VS Code's variable, expanded by VS Code, not JS
export const WORKSPACE = '${workspaceFolder}';

export function replayLaunchConfig(options: {
  session: string;
  name?: string;
  substitutePath?: SubstitutePathRule[];
  sourceRoot?: string;
  stopOnEntry?: boolean;
}): LaunchConfiguration {
  return {
    name: options.name ?? `ctrdbg replay: ${options.session.split('/').pop()}`,
    type: 'ctrdbg-replay',
    request: 'launch',
    session: options.session,
    ...(options.sourceRoot !== undefined ? { sourceRoot: options.sourceRoot } : {}),
    ...(options.substitutePath ? { substitutePath: options.substitutePath } : {}),
    stopOnEntry: options.stopOnEntry ?? true,
  };
}

/**
 * The vscode-go configuration for attaching to the node's headless Delve through the SSH tunnel that
 * `ctrdbg attach --interactive` opens on `host:port` (loopback). The attach command reuses this.
 */
export function attachLaunchConfig(options: {
  target: string;
  port: number;
  host?: string;
  localRoot: string;
  remoteRoot: string;
  name?: string;
}): LaunchConfiguration {
  return {
    name: options.name ?? `ctrdbg attach: ${options.target}`,
    type: 'go',
    request: 'attach',
    mode: 'remote',
    host: options.host ?? '127.0.0.1',
    port: options.port,
    substitutePath: [{ from: options.localRoot, to: options.remoteRoot }],
  };
}

/** Walks `text` outside JSON strings: `visit` returns how many characters it consumed (0 = copy one). */
function outsideStrings(text: string, visit: (at: number) => number): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const skip = visit(i);
    if (skip > 0) i += skip;
    else out += text[i++];
  }
  return out;
}

/** launch.json is JSONC: strips comments, then trailing commas (both outside strings), then parses. */
export function parseJsonc(text: string): unknown {
  const noComments = outsideStrings(text, (i) => {
    if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      return (end < 0 ? text.length : end) - i;
    }
    if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      return (end < 0 ? text.length : end + 2) - i;
    }
    return 0;
  });
  // A trailing comma, which VS Code accepts and JSON does not.
  const noTrailing = outsideStrings(noComments, (i) =>
    noComments[i] === ',' && /^\s*[}\]]/.test(noComments.slice(i + 1, i + 4097)) ? 1 : 0,
  );
  return JSON.parse(noTrailing);
}

export interface MergeResult {
  path: string;
  added: string[];
  replaced: string[];
}

/** Merges `configs` into `<dir>/.vscode/launch.json` by name; writes atomically. */
export async function mergeLaunchJson(dir: string, configs: LaunchConfiguration[]): Promise<MergeResult> {
  const path = join(dir, '.vscode', 'launch.json');
  let doc: { version?: string; configurations?: LaunchConfiguration[]; [key: string]: unknown } = {
    version: '0.2.0',
    configurations: [],
  };
  let existing: string | undefined;
  try {
    existing = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (existing !== undefined && existing.trim() !== '') {
    try {
      doc = parseJsonc(existing) as typeof doc;
    } catch (error) {
      throw inputError(`${path} is not valid JSON (with comments): ${(error as Error).message}`, {
        hint: 'Fix or move the file, then run ctrdbg vscode again.',
        cause: error,
      });
    }
    if (
      doc === null ||
      typeof doc !== 'object' ||
      (doc.configurations !== undefined && !Array.isArray(doc.configurations))
    ) {
      throw inputError(`${path} has no "configurations" array`, {
        hint: 'Fix or move the file, then run again.',
      });
    }
  }
  const list = [...(doc.configurations ?? [])];
  const added: string[] = [];
  const replaced: string[] = [];
  for (const config of configs) {
    const at = list.findIndex((c) => c && typeof c === 'object' && c.name === config.name);
    if (at >= 0) {
      list[at] = config;
      replaced.push(config.name);
    } else {
      list.push(config);
      added.push(config.name);
    }
  }
  const next = { ...doc, version: doc.version ?? '0.2.0', configurations: list };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
  await rename(tmp, path);
  return { path, added, replaced };
}

/** The source root recorded on the node, from the session's build manifest or breakpoint paths. */
export function remoteSourceRoot(header: RecordingHeader): string | undefined {
  const manifestSource = header.buildManifest?.source;
  if (typeof manifestSource === 'string' && manifestSource !== '') return manifestSource;
  for (const bp of header.breakpoints) {
    const at = bp.file.lastIndexOf('/github.com/containerd/containerd/');
    if (at >= 0) return bp.file.slice(0, at + '/github.com/containerd/containerd'.length);
  }
  return undefined;
}
