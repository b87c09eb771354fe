/** `ctrdbg vscode`: launch.json entries for replay and live attach, merged into what is already there. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachLaunchConfig, parseJsonc, vscodeCommand } from '../../src/commands/vscode.js';
import { CtrdbgError } from '../../src/errors.js';

const sample = resolve(import.meta.dirname, '..', 'fixtures', 'sessions', 'sample.jsonl');
const REMOTE = '/usr/share/gocode/src/github.com/containerd/containerd';
// biome-ignore lint/suspicious/noTemplateCurlyInString: VS Code's variable, written verbatim into launch.json
const WS = '${workspaceFolder}';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctrdbg-vscode-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const readLaunch = () => JSON.parse(readFileSync(join(dir, '.vscode', 'launch.json'), 'utf8'));

describe('ctrdbg vscode', () => {
  it('writes a replay config (workspace-relative session, substitutePath from the recording) and a Go attach config', async () => {
    copyFileSync(sample, join(dir, 'run.jsonl'));
    const out = await vscodeCommand({ dir, session: join(dir, 'run.jsonl'), target: 'lab', port: '2345' });
    expect(out.data.added).toEqual(['ctrdbg replay: run.jsonl', 'ctrdbg attach: lab']);
    expect(readLaunch()).toEqual({
      version: '0.2.0',
      configurations: [
        {
          name: 'ctrdbg replay: run.jsonl',
          type: 'ctrdbg-replay',
          request: 'launch',
          session: `${WS}/run.jsonl`,
          substitutePath: [{ from: WS, to: REMOTE }],
          stopOnEntry: true,
        },
        {
          name: 'ctrdbg attach: lab',
          type: 'go',
          request: 'attach',
          mode: 'remote',
          host: '127.0.0.1',
          port: 2345,
          substitutePath: [{ from: WS, to: REMOTE }],
        },
      ],
    });
  });

  it('merges into an existing launch.json with comments and trailing commas, replacing its own entries by name', async () => {
    mkdirSync(join(dir, '.vscode'));
    writeFileSync(
      join(dir, '.vscode', 'launch.json'),
      `{
  // mine, keep it
  "version": "0.2.0",
  "configurations": [
    { "name": "mine", "type": "node", "request": "launch", "program": "a // not a comment" },
    { "name": "ctrdbg attach: lab", "type": "go", "request": "attach", "port": 1 }, /* old */
  ],
}
`,
    );
    const out = await vscodeCommand({ dir, target: 'lab', port: '40000', src: '/home/dev/containerd' });
    expect(out.data).toMatchObject({ added: [], replaced: ['ctrdbg attach: lab'] });
    const launch = readLaunch();
    expect(launch.configurations).toHaveLength(2);
    expect(launch.configurations[0]).toEqual({
      name: 'mine',
      type: 'node',
      request: 'launch',
      program: 'a // not a comment',
    });
    expect(launch.configurations[1]).toMatchObject({
      port: 40000,
      substitutePath: [{ from: '/home/dev/containerd', to: REMOTE }],
    });
  });

  it('needs a session or a target, and a remote source for targets it does not know', async () => {
    await expect(vscodeCommand({ dir })).rejects.toBeInstanceOf(CtrdbgError);
    await expect(vscodeCommand({ dir, target: 'minikube' })).rejects.toMatchObject({
      hint: expect.stringContaining('--remote-src'),
    });
    const out = await vscodeCommand({ dir, target: 'minikube', remoteSrc: '/src/containerd' });
    expect(out.data.configurations[0]).toMatchObject({
      name: 'ctrdbg attach: minikube',
      substitutePath: [{ to: '/src/containerd' }],
    });
  });

  it('refuses to overwrite a launch.json it cannot parse', async () => {
    mkdirSync(join(dir, '.vscode'));
    writeFileSync(join(dir, '.vscode', 'launch.json'), '{ "configurations": [ }');
    await expect(vscodeCommand({ dir, target: 'lab' })).rejects.toThrow(/is not valid JSON/);
    expect(readFileSync(join(dir, '.vscode', 'launch.json'), 'utf8')).toBe('{ "configurations": [ }');
  });

  it('exports the attach config for the attach command', () => {
    expect(
      attachLaunchConfig({ target: 'ssh://n1', port: 2345, localRoot: '/l', remoteRoot: '/r' }).request,
    ).toBe('attach');
    expect(parseJsonc('{"a": "x,]", /* c */ "b": [1, 2,],}')).toEqual({ a: 'x,]', b: [1, 2] });
  });
});
