/**
 * The engine's memory accounting by buffer: what a training step really holds (weights, gradients,
 * optimizer state, activations), each buffer once. tfjs's own `tf.memory().numBytes` and `tf.profile`'s
 * `peakBytes` count a buffer again for every tensor that views it (a reshape, a clone the gradient tape
 * saves), which inflates whatever keeps views, e.g. a frozen weight saved for the backward pass.
 *
 * Reference: tfjs-core 4.22 `engine.ts` (`trackTensor`, `removeDataId`: the buffer table this counts);
 * PyTorch `torch.cuda.max_memory_allocated` / `reset_peak_memory_stats` (the same two numbers).
 */
import { bufferCounts } from "./tfjs_internals";

/**
 * Starts counting (idempotent): buffers allocated from now on are counted until freed. Call it before
 * creating what you will measure (the model too, to count its weights).
 */
export function startMemoryMeter(): void {
  bufferCounts();
}

/** Bytes of the live tensor buffers allocated since the meter started, each buffer once. */
export function bufferBytes(): number {
  return bufferCounts().bytes;
}

/**
 * Runs `f` and returns its result with the peak of {@link bufferBytes} while it ran (`peakBytes`) and the
 * bytes live when it started (`startBytes`): `peakBytes − startBytes` is what `f` added at its worst.
 */
export async function measurePeakBytes<T>(
  f: () => T | Promise<T>,
): Promise<{ result: T; peakBytes: number; startBytes: number }> {
  const counts = bufferCounts();
  const startBytes = counts.bytes;
  counts.peak = startBytes;
  const result = await f();
  return { result, peakBytes: counts.peak, startBytes };
}
