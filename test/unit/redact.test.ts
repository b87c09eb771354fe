import { describe, expect, it } from 'vitest';
import {
  maskCommandLine,
  redactExpressions,
  redactValue,
  redactValues,
  shouldRedact,
} from '../../src/record/redact.js';
import type { RecordedValue } from '../../src/recording/format.js';

const s = (name: string, value: string): RecordedValue => ({ name, type: 'string', kind: 'string', value });
const struct = (name: string, type: string, children: RecordedValue[]): RecordedValue => ({
  name,
  type,
  kind: 'struct',
  children,
});
const ptr = (name: string, to: RecordedValue): RecordedValue => ({
  name,
  type: `*${to.type}`,
  kind: 'ptr',
  children: [to],
});

/** Every string value anywhere in a recorded value. */
function strings(v: RecordedValue): string[] {
  return [...(v.value !== undefined ? [v.value] : []), ...(v.children ?? []).flatMap(strings)];
}

const pull = ptr(
  'r',
  struct('', 'runtime.PullImageRequest', [
    struct('Image', 'runtime.ImageSpec', [s('Image', 'busybox:1.36')]),
    ptr(
      'Auth',
      struct('', 'runtime.AuthConfig', [
        s('Username', 'bob'),
        s('Password', 'pa55'),
        s('ServerAddress', 'r.io'),
      ]),
    ),
  ]),
);

describe('redaction by path', () => {
  const rules = { paths: ['r.Auth'], fieldNames: false };

  it('removes the value and children under a redacted path, keeping its name, type and kind', () => {
    const { value, count } = redactValue(pull, 'r', rules);
    expect(count).toBe(1);
    expect(strings(value)).toEqual(['busybox:1.36']);
    const auth = value.children?.[0]?.children?.[1];
    expect(auth).toEqual({ name: 'Auth', type: '*runtime.AuthConfig', kind: 'ptr', redacted: true });
  });

  it('applies to expressions at and inside the path, through pointers and parentheses', () => {
    expect(shouldRedact('r.Auth', rules)).toBe(true);
    expect(shouldRedact('r.Auth.Password', rules)).toBe(true);
    expect(shouldRedact('(r.Auth)', rules)).toBe(true);
    expect(shouldRedact('*r.Auth', rules)).toBe(true);
    expect(shouldRedact('r.Authority', rules)).toBe(false);
    expect(shouldRedact('r.Image', rules)).toBe(false);
    const { expressions, count } = redactExpressions(
      [
        { expr: 'r.Auth.Password', value: s('r.Auth.Password', 'pa55') },
        { expr: 'r.Image.Image', value: s('r.Image.Image', 'busybox:1.36') },
        { expr: 'r.Auth', error: 'not evaluated' },
      ],
      rules,
    );
    expect(count).toBe(1);
    expect(expressions[0]?.value).toMatchObject({ redacted: true });
    expect(expressions[0]?.value?.value).toBeUndefined();
    expect(expressions[1]?.value?.value).toBe('busybox:1.36');
    expect(expressions[2]).toEqual({ expr: 'r.Auth', error: 'not evaluated' });
  });

  it('reaches slice elements and map values by their paths', () => {
    const list: RecordedValue = {
      name: 'req',
      type: 'Req',
      kind: 'struct',
      children: [
        {
          name: 'Mounts',
          type: '[]Mount',
          kind: 'slice',
          children: [
            struct('[0]', 'Mount', [s('Source', '/a')]),
            struct('[1]', 'Mount', [s('Source', '/secret')]),
          ],
        },
        {
          name: 'Labels',
          type: 'map[string]string',
          kind: 'map',
          // As convertVariable names map entries: the key, rendered, in brackets.
          children: [s('["team"]', 'blue'), s('["api-key"]', 'k-123'), s('["Token"]', 't-9')],
        },
      ],
    };
    const byIndex = redactValue(list, 'req', { paths: ['req.Mounts[1]'], fieldNames: false });
    expect(strings(byIndex.value)).toEqual(['/a', 'blue', 'k-123', 't-9']);
    for (const rule of ['req.Labels[api-key]', 'req.Labels["api-key"]']) {
      const byKey = redactValue(list, 'req', { paths: [rule], fieldNames: false });
      expect(strings(byKey.value), rule).toEqual(['/a', '/secret', 'blue', 't-9']);
    }
    const wholeMap = redactValue(list, 'req', { paths: ['req.Labels'], fieldNames: false });
    expect(strings(wholeMap.value)).toEqual(['/a', '/secret']);
    expect(wholeMap.count).toBe(1);
    // A map key that names a credential is redacted by the field-name rule.
    const byName = redactValue(list, 'req', { paths: [], fieldNames: true });
    expect(strings(byName.value)).toEqual(['/a', '/secret', 'blue', 'k-123']);
  });
});

describe('redaction by field name', () => {
  it('redacts credential-named fields anywhere, however deep, unless turned off', () => {
    const deep = struct('config', 'Config', [
      struct('Registry', 'Registry', [
        struct('Configs', 'map', [
          struct('r.io', 'RegistryConfig', [s('IdentityToken', 't0k'), s('Endpoint', 'https://r.io')]),
        ]),
      ]),
    ]);
    const on = redactValues([deep, pull], { paths: [], fieldNames: true });
    expect(on.values.flatMap(strings)).toEqual(['https://r.io', 'busybox:1.36']);
    expect(on.count).toBe(2); // IdentityToken and Auth (the whole Auth subtree)
    const off = redactValues([deep, pull], { paths: [], fieldNames: false });
    expect(off.count).toBe(0);
    expect(off.values.flatMap(strings)).toContain('pa55');
  });

  it('matches field names case-insensitively, and map keys that name a credential', () => {
    expect(shouldRedact('r.config.password', { paths: [], fieldNames: true })).toBe(true);
    expect(shouldRedact('m[Token]', { paths: [], fieldNames: true })).toBe(true);
    expect(shouldRedact('r.TokenCount2', { paths: [], fieldNames: true })).toBe(false);
  });

  it('returns the same object when nothing is redacted', () => {
    const plain = struct('x', 'X', [s('Name', 'n')]);
    expect(redactValue(plain, 'x', { paths: [], fieldNames: true }).value).toBe(plain);
  });
});

describe('maskCommandLine', () => {
  const cases: [string, string, string[]][] = [
    ['crictl pull --creds bob:pa55 busybox', 'crictl pull --creds <redacted> busybox', ['--creds value']],
    ['crictl pull --creds=bob:pa55 busybox', 'crictl pull --creds=<redacted> busybox', ['--creds value']],
    ["x --password 'pa ss' --username bob", 'x --password <redacted> --username bob', ['--password value']],
    [
      'x --token=abc --registry-token xyz',
      'x --token=<redacted> --registry-token <redacted>',
      ['--token value', '--registry-token value'],
    ],
    ['ctr pull -u alice:s3cr3t img', 'ctr pull -u alice:<redacted> img', ['-u password']],
    ['curl https://bob:pa55@r.io/v2/', 'curl https://bob:<redacted>@r.io/v2/', ['URL password']],
    [
      'GITHUB_TOKEN=ghp_1 REG_PASSWORD=x make',
      'GITHUB_TOKEN=<redacted> REG_PASSWORD=<redacted> make',
      ['GITHUB_TOKEN=', 'REG_PASSWORD='],
    ],
    [
      'curl -H "Authorization: Bearer abc.def" u',
      'curl -H "Authorization: Bearer <redacted>" u',
      ['Authorization header'],
    ],
  ];
  it.each(cases)('%s', (input, text, masked) => {
    const out = maskCommandLine(input);
    expect(out.text).toBe(text);
    expect(out.masked).toEqual(masked);
    for (const secret of ['pa55', 's3cr3t', 'ghp_1', 'abc.def', "'pa ss'"])
      expect(out.text).not.toContain(secret);
  });

  it('leaves ordinary commands alone', () => {
    for (const c of [
      'ctr -a $CTRDBG_SOCKET namespaces create ns1',
      'kubectl run t --image=busybox -- echo hi',
      'ctrdbg lab kubelet run-pod --pass-through x --auth-file /f',
    ])
      expect(maskCommandLine(c)).toEqual({ text: c, masked: [] });
  });
});
