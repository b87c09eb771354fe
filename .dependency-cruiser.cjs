/**
 * The house plan, checked by `make lint` (dependency-cruiser): every import points down the pipeline.
 * LAYERS is the one place the order is written, lowest first; a module may import its own layer and the
 * layers below it, never one above. Folders of one layer do not import each other unless listed as allowed.
 */
const LAYERS = [
  ['errors', 'config'], //                 the error taxonomy; where files live
  ['util'], //                             processes (one logged runner), files, shell quoting, terminal output
  ['recording'], //                        the recording file: format, reader, writer
  ['nodes'], //                            reaching a node: RemoteHost, SSH (the only ssh2 user), targets, labs as nodes
  ['debugbuild'], //                       building a debuggable containerd: toolchains, go build, ELF/DWARF, manifest
  ['delve'], //                            Delve: API types, the JSON-RPC client, dlv on the node through the agent
  ['breakpoints'], //                      breakpoint sets and their resolution against a binary
  ['deploy'], //                           the node's state: probe, service, binary swap, source sync, tools, doctor
  ['record'], //                           the recording loop: Delve's values into recorded ones, redaction
  ['editor', 'replay'], //                 VS Code launch.json; replay (terminal, DAP, HTML) — never Delve
  ['attach', 'lab'], //                    an attach run; the lab nodes' lifecycle
  ['commands'], //                         one file per command: results and errors, no printing of its own
  ['cli'], //                              commander declarations
  ['main'], //                             the process edge: prints errors, sets the exit code
];

const layerOf = (name) => LAYERS.findIndex((layer) => layer.includes(name));
const path = (name) => (name === 'main' ? '^src/main\\.ts$' : name === 'cli' ? '^src/(cli/|cli\\.ts$)' : name === 'errors' || name === 'config' ? `^src/${name}\\.ts$` : `^src/${name}/`);
const above = (index) => LAYERS.slice(index + 1).flat().map(path);
const sameLayerOthers = (name) => LAYERS[layerOf(name)].filter((n) => n !== name).map(path);

const layerRules = LAYERS.flatMap((layer, index) =>
  layer
    .map((name) => ({ name, forbidden: [...above(index), ...sameLayerOthers(name)] }))
    // The top layer may import everything (an empty list would match everything, not nothing).
    .filter((rule) => rule.forbidden.length > 0)
    .map(({ name, forbidden }) => ({
      name: `layer-${name}`,
      comment: `${name} (layer ${index}) may only import from its own folder and the layers below: ${LAYERS.slice(0, index).flat().join(', ') || 'none'}`,
      severity: 'error',
      from: { path: path(name) },
      to: { path: forbidden },
    })),
);

/** Each outside world has one seam. */
const seams = [
  { name: 'seam-ssh2', module: 'node_modules/ssh2/', only: '^src/nodes/ssh/sshConnection\\.ts$' },
  { name: 'seam-debugadapter', module: 'node_modules/@vscode/debugadapter/', only: '^src/replay/dapSession\\.ts$' },
  { name: 'seam-commander', module: 'node_modules/commander/', only: '^src/(cli/|cli\\.ts$|main\\.ts$)' },
  // Every local process starts through the one logged runner.
  { name: 'seam-processes', module: '^(node_modules/execa/|child_process$|node:child_process$)', only: '^src/util/exec\\.ts$' },
].map((s) => ({
  name: s.name,
  comment: `only ${s.only} imports ${s.module}`,
  severity: 'error',
  from: { pathNot: s.only },
  to: { path: s.module, dependencyTypesNot: ['type-only'] },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    ...seams,
    {
      name: 'no-circular',
      comment: 'no import circles',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'replay-never-delve',
      comment: 'replay reads recordings only; a recording outlives any Delve version',
      severity: 'error',
      from: { path: '^src/replay/' },
      to: { path: '^src/(delve|record)/' },
    },
    {
      name: 'seam-ssh2-types',
      comment: 'not even type imports of ssh2 outside its seam',
      severity: 'error',
      from: { pathNot: '^src/nodes/ssh/sshConnection\\.ts$' },
      to: { path: 'node_modules/(@types/)?ssh2/', dependencyTypes: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
