import type { Command } from 'commander';
import { filterHelp } from '../replay/filter.js';
import { action } from './run.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `--stats` alone is true; each `--stats EXPR` adds an expression. */
const collectStats = (value: string, previous: boolean | string[] = []) => [
  ...(Array.isArray(previous) ? previous : []),
  value,
];

/** replay (terminal, HTML), dap (VS Code adapter) and vscode (launch.json entries). */
export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description(
      'replay a recorded session: summary, list, one hit, diff, statistics, HTML timeline, or interactively',
    )
    .argument('<file>', 'session file written by `ctrdbg attach --record`')
    .option('--list', 'one line per hit with its recorded values (paged on a terminal)')
    .option('--from <n>', 'with --list: start at hit N (the first matching hit from N on)')
    .option('--limit <n>', 'with --list: at most N hits')
    .option('--goto <n>', 'show hit N: recorded expressions, parameters, receiver, locals, stack')
    .option(
      '--expand <name>',
      'with --goto: show NAME whole (receiver, a parameter such as ctx, or all)',
      collect,
    )
    .option('--filter <expr>', 'only hits matching EXPR (the filter language below; repeatable)', collect)
    .option('--diff <a b...>', 'what changed between hits A and B (any two breakpoints: their common paths)')
    .option('--all', 'with --diff: also changes of addresses only (pointers, channels)')
    .option(
      '--stats [expr]',
      'hits per breakpoint and per second, the slowest stops; with EXPR, its distinct values (repeatable)',
      collectStats,
    )
    .option('--html <out>', 'write a self-contained HTML timeline to OUT (hits chosen by --filter)')
    .option('--max-hits <n>', 'with --html: embed at most N hits (default 200000)', Number)
    .option('-i, --interactive', 'step through hits with next/prev/goto/filter/list (default on a terminal)')
    .option('--json', 'print the view as JSON')
    .addHelpText('after', `\n${filterHelp()}\n`)
    .action(action(async (file, opts) => (await import('../commands/replay.js')).replayCommand(file, opts)));
  program
    .command('dap')
    .description(
      'Debug Adapter Protocol server replaying sessions in VS Code (stdio, or --server PORT on 127.0.0.1)',
    )
    .option('--server <port>', 'listen on 127.0.0.1:PORT instead of stdio (0 picks a free port)')
    .action(action(async (opts) => (await import('../commands/dap.js')).dapCommand(opts)));
  program
    .command('vscode')
    .description(
      'write or merge .vscode/launch.json: a replay config for a session and a Go remote-attach config',
    )
    .option('--session <file>', 'session file to replay with the ctrdbg-replay debug type')
    .option('--target <spec>', 'target for the live-attach config (lab, minikube[:profile], ssh://…)')
    .option('--dir <dir>', 'workspace folder holding .vscode/', '.')
    .option('--port <port>', 'local port of the Delve tunnel for the attach config', '2345')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: VS Code's variable, expanded by VS Code
    .option('--src <dir>', 'local containerd source tree (substitutePath "from")', '${workspaceFolder}')
    .option('--remote-src <dir>', 'source path recorded in the binary on the node (substitutePath "to")')
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/vscode.js')).vscodeCommand(opts)));
}
