/**
 * Paging for line-based terminals: a view taller than the screen is shown a page at a time, and the next
 * input line decides: Enter shows the next page, `q` stops, anything else stops paging and is handled as a
 * command. Line-based on purpose: the interactive replay reads commands line by line, and tests drive both
 * with plain streams.
 */

/** Where pages go and how tall one is. */
export interface PagerOutput {
  write(text: string): void;
  /** Lines per page (the terminal's height minus the prompt); 0 or less: never page. */
  pageLines: number;
}

/** Lines come from a source that may be lazy (a listing reads hits as pages are shown). */
export type LineSource = (count: number) => string[];

export function arraySource(lines: readonly string[]): LineSource & { remaining(): number } {
  let at = 0;
  const source = (count: number) => {
    const out = lines.slice(at, at + count);
    at += out.length;
    return out;
  };
  return Object.assign(source, { remaining: () => lines.length - at });
}

export class Pager {
  private source: LineSource | undefined;
  private describe: ((shown: number) => string) | undefined;
  private shown = 0;
  /** The look-ahead line of the last page. */
  private held: string[] = [];

  constructor(private readonly out: PagerOutput) {}

  /** Whether a view is waiting for its next page. */
  get active(): boolean {
    return this.source !== undefined;
  }

  /**
   * Shows the first page of `source`; returns true when more remain (the caller then routes the next input
   * line to `answer`). `more` gets the number of lines shown so far and says where the reader is, for the
   * prompt (e.g. "40 of 300 lines").
   */
  show(source: LineSource, more: (shown: number) => string): boolean {
    this.source = source;
    this.describe = more;
    this.shown = 0;
    this.held = [];
    return this.page();
  }

  /** Handles an input line while paging: true when it was consumed (Enter or q), false to run it as a command. */
  answer(line: string): boolean {
    const word = line.trim().toLowerCase();
    if (word === '' || word === ' ') {
      this.page();
      return true;
    }
    this.stop();
    return word === 'q' || word === 'quit';
  }

  stop(): void {
    this.source = undefined;
    this.describe = undefined;
    this.held = [];
  }

  private page(): boolean {
    const source = this.source;
    if (!source) return false;
    const height = this.out.pageLines > 0 ? this.out.pageLines : Number.MAX_SAFE_INTEGER;
    // One line more than a page tells whether another page follows without a separate count.
    const lines = this.held.splice(0, height + 1);
    if (lines.length < height + 1) lines.push(...source(height + 1 - lines.length));
    const shown = lines.slice(0, height);
    if (shown.length) this.out.write(`${shown.join('\n')}\n`);
    this.shown += shown.length;
    if (lines.length <= height) {
      this.stop();
      return false;
    }
    this.held = lines.slice(height);
    this.out.write(`-- more (${this.describe?.(this.shown) ?? ''}): Enter for the next page, q to stop --\n`);
    return true;
  }
}

/** The page height for an output stream: its rows minus room for the prompt, or `fallback`. */
export function pageLinesOf(stream: NodeJS.WritableStream, fallback: number): number {
  const rows = (stream as NodeJS.WriteStream).rows;
  return typeof rows === 'number' && rows > 4 ? rows - 2 : fallback;
}
