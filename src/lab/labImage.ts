/**
 * The lab's images, built offline: a static Go program (scripts/lab/<program>) in a single-layer OCI image.
 * - `ctrdbg.lab/hello:1` prints its arguments; with it a trigger runs a real container
 *   (`ctr run --rm ctrdbg.lab/hello:1 ID /hello hi`): containers.Create, tasks.Create, FIFOs, a shim, a snapshot.
 * - `ctrdbg.lab/pause:1` waits for SIGTERM: the CRI lab's `sandbox_image`, like Kubernetes' pause.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { scriptsDir } from '../config.js';
import { environmentError } from '../errors.js';
import { run, runChecked } from '../util/exec.js';
import { exists } from '../util/fsx.js';

export const LAB_IMAGE = 'ctrdbg.lab/hello:1';
export const PAUSE_IMAGE = 'ctrdbg.lab/pause:1';

export interface LabImageSpec {
  ref: string;
  /** The program under scripts/lab/ and the file name it gets at the image root. */
  program: string;
}

export const HELLO: LabImageSpec = { ref: LAB_IMAGE, program: 'hello' };
export const PAUSE: LabImageSpec = { ref: PAUSE_IMAGE, program: 'pause' };

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function tarOf(entries: { name: string; data: Buffer; mode?: number }[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of tar) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) =>
      tar.entry({ name: e.name, mode: e.mode ?? 0o644, mtime: new Date(0), uid: 0, gid: 0 }, e.data, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  tar.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Builds (once) the OCI archive of a lab image under `dir`; returns its path. */
export async function buildLabImage(dir: string, spec: LabImageSpec = HELLO): Promise<string> {
  const archive = join(dir, `${spec.program}.oci.tar`);
  if (await exists(archive)) return archive;
  await mkdir(dir, { recursive: true });
  const binary = join(dir, spec.program);
  await runChecked(
    'go',
    ['build', '-trimpath', '-o', binary, './main.go'],
    (d) => environmentError(`Building the lab image's program failed: ${d}`, { hint: 'Install golang-go.' }),
    {
      cwd: join(scriptsDir, 'lab', spec.program),
      env: { CGO_ENABLED: '0', GO111MODULE: 'off', GOFLAGS: '' },
    },
  );
  const layer = await tarOf([{ name: spec.program, data: await readFile(binary), mode: 0o755 }]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: [`/${spec.program}`], Env: ['PATH=/'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${sha(config)}`,
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: `sha256:${sha(layer)}`,
          size: layer.length,
        },
      ],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha(manifest)}`,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': spec.ref },
        },
      ],
    }),
  );
  const oci = await tarOf([
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', data: index },
    ...[layer, config, manifest].map((data) => ({ name: `blobs/sha256/${sha(data)}`, data })),
  ]);
  const tmp = `${archive}.tmp`;
  await pipeline(async function* () {
    yield oci;
  }, createWriteStream(tmp));
  await rename(tmp, archive);
  return archive;
}

/**
 * Imports the lab image into containerd's default namespace unless it is there already. The manifest's
 * org.opencontainers.image.ref.name annotation names it; --index-name would add a second image for the index
 * digest, which ctr 1.6 intermittently fails to find on a fresh content store.
 */
export async function importLabImage(
  socket: string,
  archive: string,
  options: { ref?: string; namespace?: string; ctr?: string } = {},
): Promise<void> {
  const ctr = options.ctr ?? 'ctr';
  const ns = options.namespace ? ['-n', options.namespace] : [];
  const listed = await run(ctr, ['-a', socket, ...ns, 'images', 'ls', '-q'], { timeout: 30_000 });
  if (listed.stdout.split('\n').includes(options.ref ?? LAB_IMAGE)) return;
  if (!(await stat(archive).catch(() => undefined)))
    throw environmentError(`The lab image archive ${archive} is missing.`);
  await runChecked(
    ctr,
    ['-a', socket, ...ns, 'images', 'import', archive],
    (d) => environmentError(`Importing the lab image failed: ${d}`),
    { timeout: 120_000 },
  );
}
