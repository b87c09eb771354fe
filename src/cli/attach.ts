import { type Command, InvalidArgumentError } from 'commander';
import { targetOptions } from './deploy.js';
import { action } from './run.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1');
  return n;
};
/** "30", "30s", "5m", "1h" → seconds. */
export const parseDuration = (value: string) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('use a number of seconds or e.g. 30s, 5m, 1h');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
};

export function registerAttach(program: Command): void {
  targetOptions(
    program
      .command('attach')
      .argument('[target]', 'lab, minikube, ssh://…; default: the last one set up')
      .description(
        "attach dlv to the node's containerd, arm breakpoint sets, record every hit; always detaches safely",
      ),
  )
    .option('--set <name>', 'breakpoint set to arm (repeatable): ctrdbg sets list', collect, [])
    .option('--sets-dir <dir>', 'also read breakpoint sets from this directory')
    .option('--record <file>', 'write the hits to this session file (JSONL, mode 0600; never overwrites)')
    .option('--force', 'with --record: replace an existing file')
    .option('--trigger <command>', 'run this shell command once armed; stop when it ends')
    .option('--trigger-on-node', 'run the trigger on the node (through sudo) instead of locally')
    .option('--max-hits <n>', 'stop after this many hits', positiveInt)
    .option(
      '--duration <d>',
      'stop after this long (e.g. 30s, 5m), the trigger and an --interactive hand-over included',
      parseDuration,
    )
    .option('--interactive', 'stop at the first hit and hand over to dlv connect / VS Code until Ctrl-C')
    .option(
      '--port <port>',
      'local port for --interactive, bound before attaching (default: any free one)',
      Number,
    )
    .option(
      '--vscode-dir <dir>',
      'where --interactive writes .vscode/launch.json (default: the current directory)',
    )
    .option('--no-redact', 'record credential-looking fields too (set-level redactions still apply)')
    .option('--json', 'print the summary as JSON (hit lines go to stderr)')
    .action(
      action(async (spec, opts) => {
        const { redact, ...rest } = opts as { redact?: boolean; set: string[] } & Record<string, unknown>;
        const options = { ...rest, noRedact: redact === false } as Parameters<
          typeof import('../commands/attach.js').attachCommand
        >[1];
        return (await import('../commands/attach.js')).attachCommand(spec, options);
      }),
    );
}

export function registerSetsCheck(sets: Command): void {
  targetOptions(
    sets
      .command('check')
      .argument('[target]', 'lab, minikube, ssh://…; default: the last one set up')
      .description(
        "resolve sets against the node's running containerd: functions, file:line, optimised?, nearest names",
      ),
  )
    .option('--set <name>', 'only this set (repeatable)', collect, [])
    .option('--sets-dir <dir>', 'also read sets from this directory')
    .option('--json', 'machine-readable output')
    .action(
      action(async (spec, opts) => (await import('../commands/attach.js')).setsCheckCommand(spec, opts)),
    );
}
