/**
 * The lab's one image, built offline: a static `hello` binary in a single-layer OCI image, imported into the
 * lab's containerd as `ctrdbg.lab/hello:1`. With it a trigger can run a real container
 * (`ctr run --rm ctrdbg.lab/hello:1 ID /hello hi`): containers.Create, tasks.Create, FIFOs, a shim, a snapshot.
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

/** Builds (once) the OCI archive of the lab image under `dir`; returns its path. */
export async function buildLabImage(dir: string): Promise<string> {
  const archive = join(dir, 'hello.oci.tar');
  if (await exists(archive)) return archive;
  await mkdir(dir, { recursive: true });
  const binary = join(dir, 'hello');
  await runChecked(
    'go',
    ['build', '-trimpath', '-o', binary, './main.go'],
    (d) => environmentError(`Building the lab image's program failed: ${d}`, { hint: 'Install golang-go.' }),
    {
      cwd: join(scriptsDir, 'lab/hello'),
      env: { CGO_ENABLED: '0', GO111MODULE: 'off', GOFLAGS: '' },
    },
  );
  const layer = await tarOf([{ name: 'hello', data: await readFile(binary), mode: 0o755 }]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/hello'], Env: ['PATH=/'] },
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
          annotations: { 'org.opencontainers.image.ref.name': LAB_IMAGE },
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
export async function importLabImage(socket: string, archive: string): Promise<void> {
  const listed = await run('ctr', ['-a', socket, 'images', 'ls', '-q'], { timeout: 30_000 });
  if (listed.stdout.split('\n').includes(LAB_IMAGE)) return;
  if (!(await stat(archive).catch(() => undefined)))
    throw environmentError(`The lab image archive ${archive} is missing.`);
  await runChecked(
    'ctr',
    ['-a', socket, 'images', 'import', archive],
    (d) => environmentError(`Importing the lab image failed: ${d}`),
    { timeout: 120_000 },
  );
}
