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
  /** The adapter offers Dawn's subgroup-matrix feature (not used: see docs/webgpu.md). */
  readonly subgroupMatrix: boolean;
  /** "vendor architecture device description" of the adapter. */
  readonly description: string;
}

export interface DeviceOptions {
  /** false: store float16 packed and compute it in float32 even when the adapter has shader-f16. */
  f16?: boolean;
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

export async function acquireDevice(options: DeviceOptions = {}): Promise<GpuContext> {
  const gpu = await findGpu(options.dawnOptions ?? []);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('webgpu backend: no GPU adapter is available (on Linux without a GPU install Mesa lavapipe: mesa-vulkan-drivers)');
  const wantF16 = options.f16 ?? env('MIXPREC_WEBGPU_F16') !== '0';
  const nativeF16 = wantF16 && adapter.features.has('shader-f16');
  const requiredFeatures: GPUFeatureName[] = nativeF16 ? ['shader-f16'] : [];
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
  device.addEventListener?.('uncapturederror', (ev) => {
    console.error(`mixprec webgpu: uncaptured device error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
  });
  return {
    gpu,
    device,
    adapter,
    nativeF16,
    subgroupMatrix: adapter.features.has('chromium-experimental-subgroup-matrix' as GPUFeatureName),
    description: describeAdapter(adapter),
  };
}
