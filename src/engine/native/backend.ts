/**
 * The `native` backend: tfjs's CPU backend with its hot kernels replaced by
 * C++ (native/, through N-API) and its outputs drawn from a buffer pool.
 *
 * Every `cpu` kernel is registered for `native` first, then the native ones
 * override them; a native kernel falls back to the `cpu` one for inputs it
 * does not handle (other dtypes, unusual attributes).
 *
 * Pooled memory is safe to reuse only when no tensor and no reader still
 * sees it, so the backend counts, per pooled buffer, the tensor data that
 * reference it (views from `slice` included), and a buffer that was read
 * leaves the pool.
 */
import * as tf from "@tensorflow/tfjs";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { dataStorage, silenceCpuBanner, type StoredData } from "../tfjs_internals";
import { BufferPool } from "./pool";
import type { NativeAddon } from "./addon";

type Values = StoredData;

export class NativeBackend extends MathBackendCPU {
  readonly pool: BufferPool;
  /** Pooled buffer → [its full Float32Array, number of tensor data referencing it]. */
  private readonly references = new Map<ArrayBufferLike, { array: Float32Array; count: number }>();

  constructor(readonly addon: NativeAddon, poolBytes: number) {
    super();
    this.pool = new BufferPool(poolBytes);
    // The CPU backend prints a banner about tfjs-node on first use; the engine's report line says it better.
    silenceCpuBanner(this);
    const storage = dataStorage(this);
    const set = storage.set.bind(storage);
    const remove = storage.delete.bind(storage);
    storage.set = (id, value) => {
      const previous = storage.has(id) ? storage.get(id) : undefined;
      this.track(value, +1);
      set(id, value);
      if (previous) this.track(previous, -1);
    };
    storage.delete = (id) => {
      const value = storage.has(id) ? storage.get(id) : undefined;
      const removed = remove(id);
      if (value) this.track(value, -1);
      return removed;
    };
  }

  private track(value: Values, delta: 1 | -1): void {
    const values = value.values;
    if (!(values instanceof Float32Array) || !this.pool.owned.has(values.buffer)) return;
    const entry = this.references.get(values.buffer);
    if (delta > 0) {
      if (entry) entry.count++;
      else this.references.set(values.buffer, { array: new Float32Array(values.buffer), count: 1 });
      return;
    }
    if (!entry) return;
    if (--entry.count === 0) {
      this.references.delete(values.buffer);
      this.pool.release(entry.array);
    }
  }

  /** A Float32Array for a kernel's output, of `size` elements (contents undefined). */
  allocate(size: number): Float32Array {
    return this.pool.acquire(size);
  }

  /**
   * Reads hand out the tensor's own memory, as tfjs's cpu backend does, and
   * take that buffer out of the pool for good: a reader's array never changes
   * later. (A copy instead cost as much as the allocation it avoided: fresh
   * memory is what is slow here.)
   */
  override readSync(dataId: object): tf.backend_util.BackendValues {
    const values = super.readSync(dataId);
    if (values instanceof Float32Array && this.pool.owned.has(values.buffer)) {
      this.pool.owned.delete(values.buffer);
      this.references.delete(values.buffer);
    }
    return values;
  }

  /** Number of pooled buffers still referenced by tensors (for tests and memory reports). */
  get pooledBuffersInUse(): number {
    return this.references.size;
  }

  override dispose(): void {
    super.dispose();
    this.pool.trim();
  }
}
