/**
 * Acquiring a GPUDevice: `navigator.gpu` in browsers (and runtimes that have it), else the npm
 * package `webgpu` (Dawn's Node bindings), loaded with a dynamic import only when this backend is
 * selected. One code path after that.
 */
/// <reference types="@webgpu/types" />

export interface GpuContext {
  /** the GPU object (kept referenced: Dawn's Node bindings stop processing events once it is collected) */
  readonly gpu: GPU;
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  /** float16 tensors are `array<f16>` in shaders (adapter has shader-f16 and it was not disabled). */
  readonly nativeF16: boolean;
  /**
   * The matrix-unit shape the device was set up for (Dawn's `chromium-experimental-subgroup-matrix`:
   * tensor cores and the like), or null when the adapter lacks it or it was turned off. Whether
   * float16 GEMMs use it is the backend's `matrixUnits` (null after a failed start-up check).
   */
  readonly subgroupMatrix: SubgroupMatrixShape | null;
  /** "vendor architecture device description" of the adapter. */
  readonly description: string;
  /** Uncaptured device errors so far (each also printed): a failed submit leaves its results unwritten. */
  errors: number;
}

/** An f16 x f16 -> f32 subgroup-matrix configuration of the adapter, and its (fixed) subgroup size. */
export interface SubgroupMatrixShape {
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly subgroupSize: number;
}

export interface DeviceOptions {
  /** false: store float16 packed and compute it in float32 even when the adapter has shader-f16. */
  f16?: boolean;
  /** false: never use the adapter's subgroup-matrix units (default: use them when offered; MIXPREC_WEBGPU_SUBGROUP_MATRIX=0 also turns them off). */
  subgroupMatrix?: boolean;
  powerPreference?: 'low-power' | 'high-performance';
  /** Options passed to the `webgpu` package's create() in Node (Dawn toggles, backend=...). */
  dawnOptions?: string[];
}

function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

async function findGpu(dawnOptions: string[]): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let mod: { create(options: string[]): GPU; globals: Record<string, unknown> };
  try {
    // A variable specifier keeps bundlers from pulling the native module into browser builds.
    const specifier = 'webgpu';
    mod = (await import(specifier)) as typeof mod;
  } catch (e) {
    throw new Error(`webgpu backend: no navigator.gpu and the npm package 'webgpu' could not be loaded (${(e as Error).message}); install it with npm install webgpu`);
  }
  Object.assign(globalThis, mod.globals);
  return mod.create(dawnOptions);
}

export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info as GPUAdapterInfo | undefined;
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => typeof s === 'string' && s !== '');
  return parts.length > 0 ? [...new Set(parts)].join(' ') : 'unknown adapter';
}

const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix' as GPUFeatureName;

/**
 * Dawn offers experimental features only with its `allow_unsafe_apis` toggle; in Node we set it
 * (merged into any `enable-dawn-features=` the caller gave) so the subgroup-matrix feature is visible.
 * Browsers decide for themselves (Chrome: --enable-unsafe-webgpu).
 */
export function withUnsafeApis(dawnOptions: readonly string[]): string[] {
  const key = 'enable-dawn-features=';
  const i = dawnOptions.findIndex((o) => o.startsWith(key));
  if (i < 0) return [...dawnOptions, `${key}allow_unsafe_apis`];
  if (dawnOptions[i]!.slice(key.length).split(',').includes('allow_unsafe_apis')) return [...dawnOptions];
  return dawnOptions.map((o, j) => (j === i ? `${o},allow_unsafe_apis` : o));
}

interface AdapterMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/**
 * The f16 -> f32 configuration with the most work per instruction, when the adapter reports one
 * and a fixed subgroup size (the kernel's workgroup is 4 subgroups of exactly that size, each
 * owning a quarter of the output tile).
 */
export function pickSubgroupMatrix(adapter: GPUAdapter): SubgroupMatrixShape | null {
  // The kernel names its subgroup with @builtin(subgroup_id): the `subgroups` feature.
  if (!adapter.features.has(SUBGROUP_MATRIX_FEATURE) || !adapter.features.has('subgroups' as GPUFeatureName)) return null;
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: Iterable<AdapterMatrixConfig>; subgroupMinSize?: number; subgroupMaxSize?: number };
  const size = info.subgroupMaxSize;
  if (!size || info.subgroupMinSize !== size) return null;
  let best: AdapterMatrixConfig | null = null;
  for (const c of info.subgroupMatrixConfigs ?? []) {
    if (c.componentType !== 'f16' || c.resultComponentType !== 'f32') continue;
    if (!best || c.M * c.N * c.K > best.M * best.N * best.K) best = c;
  }
  return best ? { M: best.M, N: best.N, K: best.K, subgroupSize: size } : null;
}

export async function acquireDevice(options: DeviceOptions = {}): Promise<GpuContext> {
  const wantMatrix = options.subgroupMatrix ?? env('MIXPREC_WEBGPU_SUBGROUP_MATRIX') !== '0';
  const gpu = await findGpu(wantMatrix ? withUnsafeApis(options.dawnOptions ?? []) : (options.dawnOptions ?? []));
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('webgpu backend: no GPU adapter is available (on Linux without a GPU install Mesa lavapipe: mesa-vulkan-drivers)');
  const wantF16 = options.f16 ?? env('MIXPREC_WEBGPU_F16') !== '0';
  const nativeF16 = wantF16 && adapter.features.has('shader-f16');
  // The matrix units take f16 operands: only with native f16 storage.
  const subgroupMatrix = wantMatrix && nativeF16 ? pickSubgroupMatrix(adapter) : null;
  const requiredFeatures: GPUFeatureName[] = nativeF16 ? ['shader-f16'] : [];
  if (subgroupMatrix) requiredFeatures.push(SUBGROUP_MATRIX_FEATURE, 'subgroups' as GPUFeatureName);
  const lim = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(lim.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: Math.min(lim.maxComputeInvocationsPerWorkgroup, 256),
      maxComputeWorkgroupSizeX: Math.min(lim.maxComputeWorkgroupSizeX, 256),
    },
  });
  const context: GpuContext = {
    gpu,
    device,
    adapter,
    nativeF16,
    subgroupMatrix,
    description: describeAdapter(adapter),
    errors: 0,
  };
  device.addEventListener?.('uncapturederror', (ev) => {
    context.errors++;
    console.error(`mixprec webgpu: uncaptured device error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
  });
  return context;
}
