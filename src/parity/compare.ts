/**
 * Comparing an output with its reference: max absolute error and relative
 * error ‖out − ref‖ / ‖ref‖ (Frobenius norms over the whole tensor).
 */
import * as tf from "@tensorflow/tfjs";

/** One compared output. */
export interface ParityResult {
  /** What was compared (`logits`, `greedy_output`, …). */
  readonly name: string;
  /** max |out − ref|; for token ids, the number of differing ids. */
  readonly maxAbs: number;
  /** ‖out − ref‖ / ‖ref‖ (0 for identical ids, 1 when any id differs). */
  readonly relative: number;
  /** The largest relative error accepted. */
  readonly tolerance: number;
  readonly ok: boolean;
  /** Shape compared. */
  readonly shape: readonly number[];
}

/** Compares float values (read asynchronously: every backend). */
export async function compareTensors(
  name: string,
  output: tf.Tensor | Float32Array,
  reference: tf.Tensor | Float32Array,
  tolerance: number,
  shape?: readonly number[],
): Promise<ParityResult> {
  const got = output instanceof tf.Tensor ? ((await output.data()) as Float32Array) : output;
  const want = reference instanceof tf.Tensor ? ((await reference.data()) as Float32Array) : reference;
  const outShape = output instanceof tf.Tensor ? output.shape : (shape ?? [got.length]);
  const refShape = reference instanceof tf.Tensor ? reference.shape : (shape ?? [want.length]);
  if (outShape.join() !== refShape.join()) {
    return {
      name: `${name} (shape [${outShape}] vs reference [${refShape}])`,
      maxAbs: Infinity,
      relative: Infinity,
      tolerance,
      ok: false,
      shape: refShape,
    };
  }
  let maxAbs = 0;
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < want.length; i++) {
    const delta = Math.abs(got[i] - want[i]);
    maxAbs = Math.max(maxAbs, delta); // NaN stays NaN
    difference += delta * delta;
    norm += want[i] * want[i];
  }
  if (Number.isNaN(maxAbs)) maxAbs = Infinity;
  const relative = norm > 0 ? Math.sqrt(difference) / Math.sqrt(norm) : Math.sqrt(difference);
  return { name, maxAbs, relative, tolerance, ok: relative <= tolerance, shape: refShape };
}

/** Compares integer sequences exactly (generated tokens, packed bytes). */
export function compareExact(
  name: string,
  output: ArrayLike<number>,
  reference: ArrayLike<number>,
  shape: readonly number[],
): ParityResult {
  let differing = Math.abs(output.length - reference.length);
  for (let i = 0; i < Math.min(output.length, reference.length); i++) if (output[i] !== reference[i]) differing++;
  return { name, maxAbs: differing, relative: differing ? 1 : 0, tolerance: 0, ok: differing === 0, shape };
}
