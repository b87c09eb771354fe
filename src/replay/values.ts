/**
 * Time and path helpers shared by the terminal views, the DAP adapter and the diff. How values read is
 * render.ts; its name helpers are re-exported here for the modules that only need those.
 */
export { baseName, shortFunction, shortType } from './render.js';

/** `+12.4ms`, `+1.234s`: a hit's time since the session started. */
export function formatOffset(ms: number): string {
  if (ms < 1000) return `+${ms.toFixed(1)}ms`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(3)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `+${minutes}m${((ms - minutes * 60_000) / 1000).toFixed(3)}s`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(3)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${((ms - minutes * 60_000) / 1000).toFixed(1)} s`;
}

/** Child path segment: `.Name`, `[0]`, `["key"]`; unnamed and `*name` pointees add nothing. */
export function childPath(parent: string, name: string): string {
  if (name === '' || name.startsWith('*')) return parent;
  if (name.startsWith('[')) return parent + name;
  if (name.startsWith('"')) return `${parent}[${name}]`;
  return parent === '' ? name : `${parent}.${name}`;
}
