/** The two sides of the node agent's protocol agree: Go structs (node-agent/protocol.go) and agentProtocol.ts. */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import {
  AGENT_COMMANDS,
  AGENT_EVENTS,
  AGENT_EXIT_REASONS,
  AGENT_PROTOCOL_VERSION,
  agentLineReader,
  type ExitEvent,
  exitLeftTargetDetached,
  parseAgentLine,
  RELAY_ACTIONS,
} from '../../src/delve/agentProtocol.js';
import { agentSourceDir } from '../../src/deploy/nodeTools.js';

describe('agent protocol', () => {
  it('names the same events, exit reasons and relay actions as the agent', async () => {
    const { stdout } = await execa('go', ['run', '.', 'protocol'], {
      cwd: agentSourceDir,
      env: { GOFLAGS: '-mod=mod', GOPROXY: 'off', GO111MODULE: 'on', CGO_ENABLED: '0' },
      timeout: 120_000,
    });
    expect(JSON.parse(stdout)).toEqual({
      version: AGENT_PROTOCOL_VERSION,
      events: [...AGENT_EVENTS],
      commands: [...AGENT_COMMANDS],
      exitReasons: [...AGENT_EXIT_REASONS],
      relayActions: [...RELAY_ACTIONS],
    });
  }, 120_000);

  it('reads events out of a stream that mixes them with log lines, split anywhere', () => {
    const seen: string[] = [];
    const feed = agentLineReader((e) => seen.push(e.event));
    const text =
      '10:00:00.000 ctrdbg-agent: starting dlv\n{"event":"ready","listen":"127.0.0.1:1","dlvPid":2,"targetPid":3,"agentVersion":"2","protocolVersion":2}\n' +
      'dlv: API server listening\n{"event":"other"}\n{not json\n{"event":"exit","reason":"detached","cleared":3,"target":{"alive":true,"tracerPid":0}}\n';
    for (let i = 0; i < text.length; i += 7) feed(text.slice(i, i + 7));
    expect(seen).toEqual(['ready', 'exit']);
    expect(parseAgentLine('{"event":"relay","action":"refused","protocol":"dap"}')).toMatchObject({
      action: 'refused',
    });
  });

  it('calls a target detached only when /proc says so, whatever the reason', () => {
    const exit = (reason: ExitEvent['reason'], alive: boolean, tracerPid: number): ExitEvent => ({
      event: 'exit',
      reason,
      cleared: 1,
      target: { alive, tracerPid },
    });
    expect(exitLeftTargetDetached(exit('detached', true, 0))).toBe(true);
    // The SIGTERM fallback detaches too: reported as "terminated", and it counts (the old "sigterm" bug).
    expect(exitLeftTargetDetached(exit('terminated', true, 0))).toBe(true);
    expect(exitLeftTargetDetached(exit('dlv-exited', true, 0))).toBe(true);
    expect(exitLeftTargetDetached(exit('dlv-exited', true, 4242))).toBe(false);
    expect(exitLeftTargetDetached(exit('detached', false, 0))).toBe(false);
    expect(exitLeftTargetDetached(exit('dlv-left-running', true, 0))).toBe(false);
    expect(exitLeftTargetDetached(undefined)).toBe(false);
  });
});
