/**
 * A pool of Float32Array buffers for the native backend's outputs.
 *
 * Allocating a fresh multi-megabyte array (zero-filled by V8) cost 16× the
 * matrix multiply that filled it in the prototype, so outputs of at least
 * {@link POOL_MIN_ELEMENTS} elements come from here and return when their
 * last tensor is disposed. The pool holds at most `capBytes` of idle memory
 * (`MLLM_POOL_MB`; default a quarter of the machine's memory, at most 4 GiB)
 * and drops the least recently returned buffers beyond it; {@link BufferPool.trim}
 * empties it. Measured on the GPT benchmark step: with a 512 MB cap a third of
 * the outputs missed the pool and the step took 1.2 s; with the whole working
 * set (≈1.1 GB) pooled, 0.85 s.
 */

/** Smaller arrays are cheaper to allocate than to track. */
export const POOL_MIN_ELEMENTS = 16 * 1024;

export class BufferPool {
  private readonly idle = new Map<number, Float32Array[]>();
  /** Idle buffers in the order they were returned (a Set keeps insertion order), for trimming. */
  private readonly order = new Set<Float32Array>();
  private idleBytes = 0;
  /** Buffers this pool handed out (and their views' backing store). */
  readonly owned = new WeakSet<ArrayBufferLike>();
  hits = 0;
  misses = 0;

  constructor(readonly capBytes: number) {}

  /** A buffer of exactly `length` elements; its contents are garbage. */
  acquire(length: number): Float32Array {
    if (length < POOL_MIN_ELEMENTS) return new Float32Array(length);
    const list = this.idle.get(length);
    const buffer = list?.pop();
    if (buffer) {
      this.hits++;
      this.idleBytes -= buffer.byteLength;
      this.order.delete(buffer);
      return buffer;
    }
    this.misses++;
    const fresh = new Float32Array(length);
    this.owned.add(fresh.buffer);
    return fresh;
  }

  /** Returns a buffer no tensor references any more. */
  release(buffer: Float32Array): void {
    if (!this.owned.has(buffer.buffer) || buffer.byteOffset !== 0 || buffer.byteLength !== buffer.buffer.byteLength) return;
    const list = this.idle.get(buffer.length) ?? [];
    list.push(buffer);
    this.idle.set(buffer.length, list);
    this.order.add(buffer);
    this.idleBytes += buffer.byteLength;
    while (this.idleBytes > this.capBytes && this.order.size > 0) {
      const oldest: Float32Array = this.order.values().next().value!;
      this.order.delete(oldest);
      const same = this.idle.get(oldest.length)!;
      same.splice(same.indexOf(oldest), 1);
      this.idleBytes -= oldest.byteLength;
    }
  }

  /** Bytes held idle. */
  get bytesIdle(): number {
    return this.idleBytes;
  }

  /** Drops every idle buffer. */
  trim(): void {
    this.idle.clear();
    this.order.clear();
    this.idleBytes = 0;
  }
}
