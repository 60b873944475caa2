// The committed openapi/ extract must be exactly what scripts/gen-openapi.mjs makes from the spec.
// The spec lives outside the repository (../shared/spec); without it the test is skipped visibly.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SPEC = process.env.BERTH_SPEC ?? join(ROOT, '..', 'shared', 'spec', 'engine-api-v1.55.yaml');
const haveSpec = existsSync(SPEC);

(haveSpec ? test : test.skip)(`openapi/ is reproducible from the spec${haveSpec ? '' : ` (skipped: no spec at ${SPEC})`}`, async (t) => {
  const out = await mkdtemp('/tmp/berth-openapi-');
  try {
    await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'gen-openapi.mjs'), SPEC, out], { cwd: ROOT });
    for (const f of ['routes.json', 'schemas.json', 'types.ts']) {
      const fresh = await readFile(join(out, f), 'utf8');
      const committed = await readFile(join(ROOT, 'openapi', f), 'utf8');
      t.true(fresh === committed, `openapi/${f} differs from a fresh generation: run npm run gen`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('the extract covers every Engine operation and holds no description prose', async (t) => {
  const routes = JSON.parse(await readFile(join(ROOT, 'openapi', 'routes.json'), 'utf8'));
  t.truthy(routes._generated);
  const ids = new Set(routes.operations.map((o: { operationId: string }) => o.operationId));
  for (const id of ['ContainerCreate', 'ContainerAttach', 'ExecStart', 'ImageBuild', 'SystemPing', 'SystemPingHead', 'SystemEvents', 'NetworkCreate', 'VolumeCreate']) t.true(ids.has(id), id);
  t.true(routes.operations.length >= 100);
  const schemas = await readFile(join(ROOT, 'openapi', 'schemas.json'), 'utf8');
  t.false(/"description":\s*"/.test(schemas));
  t.true(JSON.parse(schemas).definitions.ContainerConfig.properties.Env !== undefined);
});
