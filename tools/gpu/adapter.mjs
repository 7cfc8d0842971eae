#!/usr/bin/env node
// node tools/gpu/adapter.mjs: start mixprec's webgpu backend (dist/, built) and print one JSON object
// describing what it runs on: the adapter's description and info, whether float16 is native
// (shader-f16), the subgroup-matrix shape the backend uses (backend.subgroupMatrix: a string, null,
// or absent where the backend does not say), the adapter's features and the limits that matter, and
// how long acquiring the device took. Exit status 1, with {"error": ...}, when no adapter is found.
const t0 = performance.now();
const out = { node: process.version, platform: `${process.platform}-${process.arch}`, vk_driver_files: process.env.VK_DRIVER_FILES ?? null };
try {
  const mx = await import('../../dist/api.js');
  const backend = await mx.setBackend('webgpu');
  out.acquire_ms = Math.round(performance.now() - t0);
  out.backend = backend.name;
  out.adapter = backend.adapterDescription ?? null;
  if ('subgroupMatrix' in backend) out.subgroup_matrix = backend.subgroupMatrix ?? null;
  out.native_f16 = backend.nativeF16 ?? null;
  const adapter = backend.gpu?.adapter;
  if (adapter) {
    const info = adapter.info ?? {};
    out.info = Object.fromEntries(['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize'].map((k) => [k, info[k] ?? null]));
    out.features = [...adapter.features].sort();
    const lim = adapter.limits;
    out.limits = Object.fromEntries(
      ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage'].map((k) => [k, lim[k]]),
    );
  }
  // One float16 matmul through the backend, read back, as a smoke test of the kernels.
  const a = mx.ones([64, 64], { dtype: 'float16' });
  const c = mx.matmul(a, a);
  out.smoke_matmul_f16 = Number((await c.data())[0]) === 64 ? 'ok' : `wrong: ${(await c.data())[0]}`;
  console.log(JSON.stringify(out));
  process.exit(0);
} catch (e) {
  out.error = String(e?.message ?? e).split('\n')[0];
  console.log(JSON.stringify(out));
  process.exit(1);
}
