/**
 * A pool of Float32Array buffers for the native backend's outputs.
 *
 * Allocating a fresh multi-megabyte array (zero-filled by V8) cost 16× the
 * matrix multiply that filled it in the prototype, so outputs of at least
 * {@link POOL_MIN_ELEMENTS} elements come from here and return when their
 * last tensor is disposed. The pool holds at most `capBytes` of idle memory
 * (`MLLM_POOL_MB`, default 512) and drops the least recently returned buffers
 * beyond it; {@link BufferPool.trim} empties it.
 */

/** Smaller arrays are cheaper to allocate than to track. */
export const POOL_MIN_ELEMENTS = 16 * 1024;

export class BufferPool {
  private readonly idle = new Map<number, Float32Array[]>();
  /** Idle buffers in the order they were returned, for trimming. */
  private readonly order: Float32Array[] = [];
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
      this.order.splice(this.order.lastIndexOf(buffer), 1);
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
    this.order.push(buffer);
    this.idleBytes += buffer.byteLength;
    while (this.idleBytes > this.capBytes && this.order.length > 0) {
      const oldest = this.order.shift()!;
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
    this.order.length = 0;
    this.idleBytes = 0;
  }
}
