/**
 * The slice of the WebAssembly JS API the backend uses, typed locally: the project compiles without
 * the DOM library (whose WebAssembly declarations Node's types do not repeat), and the public
 * declarations of this package must not depend on either.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** A compiled module (opaque; structured-cloneable to workers). */
export type WasmModule = object & { readonly __wasmModule?: never };

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
}

export function wasmApi(): WasmApi {
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (!api) throw new Error('wasm backend: this JavaScript engine has no WebAssembly');
  return api;
}
