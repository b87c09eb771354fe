/** POSIX shell quoting for command lines ctrdbg runs on a node (and logs locally). */
/** POSIX-shell quoting for one argument. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[\w@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}
