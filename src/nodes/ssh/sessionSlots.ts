/**
 * The waiting room for SSH session channels (exec, spawn, upload, pipeTo). OpenSSH allows 10 sessions per
 * connection (MaxSessions); a server configured lower refuses a channel open, and the room shrinks to the
 * number it had granted, so later commands wait for a free slot instead of failing. Pure: no ssh2, no I/O.
 */

/** Waiting room for session channels, sized to what the server accepts. */
export class SessionSlots {
  /** Slots handed out: channels open plus channels being opened. */
  private active = 0;
  /** Channels the server confirmed and has not closed yet. */
  private established = 0;
  private limit: number;
  private readonly waiting: { grant: () => void; fail: (error: Error) => void }[] = [];
  private failure: Error | undefined;

  /** `limit`: OpenSSH's default MaxSessions is 10; `onShrink` hears when the server proved to allow fewer. */
  constructor(
    limit = 10,
    private readonly onShrink: (limit: number, established: number) => void = () => {},
  ) {
    this.limit = limit;
  }

  get inUse(): number {
    return this.active;
  }

  async acquire(timeoutMs: number, onTimeout: () => Error): Promise<{ opened(): void; release(): void }> {
    if (this.failure) throw this.failure;
    if (this.active >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          grant: () => {
            clearTimeout(timer);
            resolve();
          },
          fail: (error: Error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        const timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(onTimeout());
        }, timeoutMs);
        this.waiting.push(waiter);
      });
    } else {
      this.active++;
    }
    let opened = false;
    let released = false;
    return {
      opened: () => {
        opened = true;
        this.established++;
      },
      release: () => {
        if (released) return;
        released = true;
        this.active--;
        if (opened) this.established--;
        this.wake();
      },
    };
  }

  /**
   * The server refused a session channel while `established` others were open: that is its real limit
   * (MaxSessions lower than 10). Returns false when none is open, i.e. waiting would not help.
   */
  shrink(): boolean {
    if (this.established < 1) return false;
    if (this.established < this.limit) {
      this.limit = this.established;
      this.onShrink(this.limit, this.established);
    }
    return true;
  }

  failAll(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiting.splice(0)) waiter.fail(error);
  }

  private wake(): void {
    while (this.active < this.limit && this.waiting.length) {
      this.active++;
      this.waiting.shift()!.grant();
    }
  }
}
