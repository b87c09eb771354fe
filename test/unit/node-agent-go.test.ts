/**
 * The node agent's own Go checks, inside `make test` so they count: `go vet` and `go test` of node-agent/
 * (the relay's protocol filters and the cleanup sequence against a stand-in dlv). The agent's behaviour with the
 * real dlv and containerd is in test/integration/delve-local.test.ts.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { agentSourceDir } from '../../src/deploy/nodeTools.js';

const goEnv = { GOFLAGS: '-mod=mod', GOPROXY: 'off', GO111MODULE: 'on', CGO_ENABLED: '0' };

describe('node agent (Go)', () => {
  it('go vet finds nothing', async () => {
    const r = await execa('go', ['vet', './...'], {
      cwd: agentSourceDir,
      env: goEnv,
      reject: false,
      timeout: 180_000,
    });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 180_000);

  it('go test passes, every test', async () => {
    const r = await execa('go', ['test', '-count=1', '-json', './...'], {
      cwd: agentSourceDir,
      env: goEnv,
      reject: false,
      timeout: 180_000,
    });
    const events = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { Action: string; Test?: string; Output?: string });
    const failed = events.filter((e) => e.Action === 'fail' && e.Test).map((e) => e.Test);
    const passed = events.filter((e) => e.Action === 'pass' && e.Test).map((e) => e.Test);
    const output = events
      .filter((e) => e.Output && failed.includes(e.Test))
      .map((e) => e.Output)
      .join('');
    expect(failed, output || r.stderr).toEqual([]);
    expect(passed.length).toBeGreaterThanOrEqual(8);
    expect(r.exitCode).toBe(0);
  }, 180_000);
});
