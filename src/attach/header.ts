/** The session file's first line: what was recorded, from which node and binary, and how it was redacted. */
import type { BreakpointSet } from '../breakpoints/sets.js';
import { packageVersion } from '../config.js';
import type { NodeProbe } from '../deploy/probe.js';
import type { Target } from '../nodes/target.js';
import type { ArmedBreakpoint } from '../record/recorder.js';
import { describeRules, type MaskedCommand } from '../record/redact.js';
import { RECORDING_FORMAT, RECORDING_VERSION, type RecordingHeader } from '../recording/format.js';

export interface HeaderInput {
  target: Target;
  probe: NodeProbe;
  manifest: Record<string, unknown> | null;
  delveVersion: string;
  sets: BreakpointSet[];
  breakpoints: ArmedBreakpoint[];
  redact: boolean;
  /** The trigger with its credentials masked. */
  trigger?: MaskedCommand;
}

export function sessionHeader(input: HeaderInput): RecordingHeader {
  const { target, probe, manifest, sets } = input;
  const rules = {
    paths: [...new Set(sets.flatMap((s) => s.entries.flatMap((e) => e.redact)))],
    fieldNames: input.redact,
  };
  const parts = probe.version.split(/\s+/);
  const buildId = (manifest?.binary as { buildId?: string } | undefined)?.buildId;
  const goVersion = (manifest?.binary as { goVersion?: string } | undefined)?.goVersion;
  return {
    type: 'header',
    format: RECORDING_FORMAT,
    version: RECORDING_VERSION,
    createdAt: new Date().toISOString(),
    ctrdbgVersion: packageVersion(),
    target: {
      spec: target.spec,
      kind: target.kind,
      host: target.endpoint.host,
      port: target.endpoint.port,
      user: target.endpoint.user,
      ...(target.minikube ? { node: target.minikube.machine } : {}),
    },
    containerd: {
      pid: probe.pid,
      binary: probe.binary,
      version: parts[2] ?? probe.version,
      ...(parts[3] ? { revision: parts[3] } : {}),
      sha256: probe.runningSha256,
      ...(buildId ? { buildId } : {}),
      ...(goVersion ? { goVersion } : {}),
    },
    buildManifest: manifest,
    delve: { version: input.delveVersion, apiVersion: 2 },
    sets: sets.map((s) => s.name),
    breakpoints: input.breakpoints.map(({ redact: _r, loadArgs: _a, loadLocals: _l, stack: _s, ...b }) => b),
    redaction: {
      enabled: input.redact,
      rules: describeRules(rules),
      ...(input.trigger?.masked.length ? { trigger: input.trigger.masked } : {}),
    },
    ...(input.trigger ? { trigger: input.trigger.text } : {}),
  };
}
