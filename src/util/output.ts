/**
 * Output helpers shared by commands: status lines go to stderr (so `--json` on stdout stays clean),
 * colour only on a TTY and never when NO_COLOR is set (https://no-color.org).
 */
import { stderr } from 'node:process';

export function colorEnabled(stream: NodeJS.WriteStream = stderr): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}

const wrap = (code: string, reset: string) => (text: string) =>
  colorEnabled() ? `\u001b[${code}m${text}\u001b[${reset}m` : text;

export const style = {
  bold: wrap('1', '22'),
  dim: wrap('2', '22'),
  red: wrap('31', '39'),
  green: wrap('32', '39'),
  yellow: wrap('33', '39'),
  cyan: wrap('36', '39'),
};

export const mark = {
  ok: () => style.green('✔'),
  bad: () => style.red('✘'),
  warn: () => style.yellow('!'),
};

export interface Logger {
  info(message: string): void;
  step(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

/** Logs to stderr; `quiet` silences info/step (used with --json). */
export function createLogger(options: { quiet?: boolean } = {}): Logger {
  const write = (line: string) => {
    stderr.write(`${line}\n`);
  };
  return {
    info: (m) => {
      if (!options.quiet) write(m);
    },
    step: (m) => {
      if (!options.quiet) write(`${style.cyan('›')} ${m}`);
    },
    warn: (m) => write(`${mark.warn()} ${m}`),
    debug: (m) => {
      if (process.env.CTRDBG_DEBUG) write(style.dim(`debug: ${m}`));
    },
  };
}

export const silentLogger: Logger = { info() {}, step() {}, warn() {}, debug() {} };

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A plain table: columns padded to the widest cell. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell));
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)),
        )
        .join('  '),
    )
    .join('\n');
}

function visibleLength(text: string): number {
  // Strips ANSI colour codes (the config allows control characters in regexes for exactly this).
  return text.replace(/\u001b\[[0-9;]*m/g, '').length;
}
