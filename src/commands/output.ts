/** What every command returns: data for `--json`, text for people, and the exit code when the outcome is "no". */
export interface CommandOutput<T = unknown> {
  data: T;
  /** Human rendering of `data`; printed when `--json` is not given. */
  text: string;
  /** Exit code when the command completed but the outcome is "no" (e.g. `build --verify` of a stripped binary). */
  exitCode?: number;
}
