/** How an error reads at the edge: one paragraph, the hint on its own line after a list, and JSON for --json. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/config.js';
import {
  commanderUsageError,
  ExitCode,
  errorJson,
  errorKinds,
  errorText,
  inputError,
} from '../../src/errors.js';

describe('error text', () => {
  it('a one-line message and its hint are one line', () => {
    expect(errorText(inputError('x.yaml is empty.', { hint: 'Delete it.' }))).toBe(
      'x.yaml is empty. Delete it.',
    );
    expect(errorText(inputError('no hint.'))).toBe('no hint.');
  });

  it("a list of problems keeps the hint off the last problem's line", () => {
    const error = inputError('invalid breakpoint set x.yaml:\n  x.yaml:7:12: bad\n  x.yaml:9:3: worse', {
      hint: 'The schema is described in breakpoint-sets/README.md.',
    });
    expect(errorText(error).split('\n')).toEqual([
      'invalid breakpoint set x.yaml:',
      '  x.yaml:7:12: bad',
      '  x.yaml:9:3: worse',
      'The schema is described in breakpoint-sets/README.md.',
    ]);
  });

  it("commander's usage errors become usage errors (exit 2) with the command's --help", () => {
    const error = commanderUsageError("error: unknown option '--bogus'", 'replay');
    expect(error.exitCode).toBe(2);
    expect(errorJson(error)).toEqual({
      error: {
        kind: 'usage',
        message: "unknown option '--bogus'.",
        hint: 'Run ctrdbg replay --help for usage.',
        details: undefined,
      },
    });
    expect(commanderUsageError("error: unknown command 'frob'", undefined).hint).toBe(
      'Run ctrdbg --help for usage.',
    );
  });
});

describe('the exit codes in the README', () => {
  it('are the taxonomy’s, each with its meaning', () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    for (const [kind, meaning] of Object.entries(errorKinds)) {
      const code = ExitCode[kind as keyof typeof errorKinds];
      expect(readme, kind).toContain(`| ${code} | ${meaning.replaceAll('--trigger', '`--trigger`')} |`);
    }
  });
});
