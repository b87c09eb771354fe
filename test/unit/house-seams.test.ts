/**
 * Seams the import linter (.dependency-cruiser.cjs, in `make lint`) cannot see: Delve's wire format is spoken in
 * one file only. The import rules themselves are exercised here too, so a broken config cannot pass silently.
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/config.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the house plan', () => {
  it("only src/delve/rpcClient.ts speaks Delve's JSON-RPC (method names on the wire)", () => {
    const speakers = sources(join(projectRoot, 'src'))
      .filter((f) => /RPCServer\.|"method"\s*:|\bjsonrpc\b/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(projectRoot, f));
    expect(speakers).toEqual(['src/delve/rpcClient.ts']);
  });

  it('the import linter passes on the tree and names the layer an upward import breaks', async () => {
    const config = join(projectRoot, '.dependency-cruiser.cjs');
    const clean = await execa('npx', ['depcruise', 'src', '--config', config, '--output-type', 'err'], {
      cwd: projectRoot,
      reject: false,
    });
    expect(clean.exitCode, clean.stdout + clean.stderr).toBe(0);
    // A module that imports upwards (the recording format → an attach run), for as long as the check runs.
    const probe = join(projectRoot, 'src/recording/zz-upward-import-probe.ts');
    writeFileSync(probe, "import { runAttach } from '../attach/run.js';\nexport const probe = runAttach;\n");
    try {
      const upward = await execa(
        'npx',
        ['depcruise', relative(projectRoot, probe), '--config', config, '--output-type', 'err'],
        { cwd: projectRoot, reject: false },
      );
      expect(upward.exitCode).not.toBe(0);
      expect(upward.stdout + upward.stderr).toContain(
        'layer-recording: src/recording/zz-upward-import-probe.ts → src/attach/run.ts',
      );
    } finally {
      rmSync(probe, { force: true });
    }
  }, 120_000);
});
