/**
 * 4-bit blockwise quantization as bitsandbytes computes it (NF4 and FP4),
 * and its double quantization of the block constants.
 *
 * Quantize: split the flattened weight into blocks (64 by default); per
 * block absmax = max |x|; scale x / absmax into [−1, 1]; take the nearest of
 * the 16 code values (first index on ties); pack two codes per byte, the first
 * element in the high nibble (an odd count pads with a quantized zero).
 * Dequantize: code[q] · absmax[block].
 *
 * Double quantization (QLoRA §3): the absmax values minus their mean are
 * quantized to 8 bits with bitsandbytes' signed dynamic map in blocks of 256,
 * so each 64-weight block costs 8 + 32/256 bits instead of 32.
 *
 * Paper: Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (2023).
 * Reference: bitsandbytes `bitsandbytes/functional.py` (`quantize_4bit`,
 * `dequantize_4bit`, `create_dynamic_map`, `quantize_blockwise`, `get_4bit_type`),
 * `bitsandbytes/backends/default/ops.py`.
 */

/** The NF4 code: quantiles of N(0, 1) normalised to [−1, 1] (bitsandbytes `get_4bit_type("nf4")`). */
export const NF4_CODE = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** bitsandbytes' FP4 (e2m1, no inf/nan) code, normalised to [−1, 1]; index bit 3 is the sign. */
export const FP4_CODE = Float32Array.from([
  0, 0.0052083333, 0.6666667, 1.0, 0.3333333, 0.5, 0.16666667, 0.25, -0, -0.0052083333, -0.6666667, -1.0, -0.3333333, -0.5,
  -0.16666667, -0.25,
]);

export type QuantType = "nf4" | "fp4";

/** The code of a 4-bit type. */
export function code4bit(type: QuantType): Float32Array {
  if (type === "nf4") return NF4_CODE;
  if (type === "fp4") return FP4_CODE;
  throw new Error(`quantize: unknown 4-bit type ${JSON.stringify(type)} (nf4 or fp4)`);
}

/** Everything needed to dequantize (bitsandbytes' `QuantState`). */
export interface QuantState4bit {
  readonly type: QuantType;
  /** Original shape. */
  readonly shape: readonly number[];
  readonly blockSize: number;
  /** Two codes per byte, ⌈n/2⌉ bytes. */
  readonly packed: Uint8Array;
  /** Per-block absmax (float32), or undefined with double quantization. */
  readonly absmax?: Float32Array;
  /** Double quantization of absmax. */
  readonly nested?: NestedState;
}

/** The 8-bit quantized block constants. */
export interface NestedState {
  /** One byte per 4-bit block: index into {@link dynamicMap}. */
  readonly quantized: Uint8Array;
  /** absmax of each block of 256 constants. */
  readonly absmax: Float32Array;
  /** The mean subtracted before quantizing. */
  readonly offset: number;
  readonly blockSize: number;
}

const f32 = Math.fround;

/** Nearest code index to a value in [−1, 1], by absolute difference, first index on ties. */
function nearest(value: number, code: Float32Array): number {
  let best = 0;
  let bestDistance = Infinity;
  for (let i = 0; i < code.length; i++) {
    const distance = f32(Math.abs(f32(value - code[i])));
    if (distance < bestDistance) {
      bestDistance = distance;
      best = i;
    }
  }
  return best;
}

/** Per-block absmax of the flattened values. */
function blockAbsmax(values: Float32Array, blockSize: number): Float32Array {
  const blocks = Math.ceil(values.length / blockSize);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let maximum = 0;
    for (let i = b * blockSize; i < Math.min(values.length, (b + 1) * blockSize); i++)
      maximum = Math.max(maximum, Math.abs(values[i]));
    absmax[b] = maximum;
  }
  return absmax;
}

/**
 * bitsandbytes' `create_dynamic_map(signed=True)`: 256 values, 7 exponent
 * levels of linearly spaced fractions each, both signs, 0 and 1; sorted.
 */
export function dynamicMap(): Float32Array {
  const data: number[] = [];
  const maxExponentBits = 7;
  const nonSignBits = 7;
  for (let i = 0; i < maxExponentBits; i++) {
    const fractionItems = 2 ** (i + nonSignBits - maxExponentBits) + 1;
    const boundaries = Array.from({ length: fractionItems }, (_, k) => f32(0.1 + ((1 - 0.1) * k) / (fractionItems - 1)));
    const scale = 10 ** (-(maxExponentBits - 1) + i);
    for (let k = 0; k + 1 < fractionItems; k++) {
      const mean = f32((boundaries[k] + boundaries[k + 1]) / 2);
      data.push(f32(scale * mean), f32(-scale * mean));
    }
  }
  data.push(0, 1);
  while (data.length < 256) data.push(0);
  return Float32Array.from(data.sort((a, b) => a - b));
}

let dynamicMapCache: Float32Array | undefined;

function nearestSorted(value: number, code: Float32Array): number {
  let low = 0;
  let high = code.length - 1;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (code[middle] <= value) low = middle;
    else high = middle;
  }
  return Math.abs(value - code[low]) <= Math.abs(code[high] - value) ? low : high;
}

/** Quantizes block constants to 8 bits (bitsandbytes' `quantize_blockwise` with the dynamic map, blocks of 256). */
export function doubleQuantize(absmax: Float32Array, blockSize = 256): NestedState {
  const map = (dynamicMapCache ??= dynamicMap());
  let sum = 0;
  for (const value of absmax) sum += value;
  const offset = f32(sum / absmax.length);
  const centred = Float32Array.from(absmax, (value) => value - offset);
  const nestedAbsmax = blockAbsmax(centred, blockSize);
  const quantized = new Uint8Array(absmax.length);
  for (let i = 0; i < centred.length; i++) {
    const scale = nestedAbsmax[Math.floor(i / blockSize)];
    quantized[i] = nearestSorted(scale > 0 ? f32(centred[i] / scale) : 0, map);
  }
  return { quantized, absmax: nestedAbsmax, offset, blockSize };
}

/** The block constants back from their 8-bit form. */
export function doubleDequantize(nested: NestedState): Float32Array {
  const map = (dynamicMapCache ??= dynamicMap());
  return Float32Array.from(nested.quantized, (q, i) =>
    f32(f32(map[q] * nested.absmax[Math.floor(i / nested.blockSize)]) + nested.offset),
  );
}

/** Quantizes float values (any shape, flattened row-major) to 4 bits. */
export function quantize4bit(
  values: Float32Array,
  shape: readonly number[],
  options: { type?: QuantType; blockSize?: number; doubleQuant?: boolean } = {},
): QuantState4bit {
  const type = options.type ?? "nf4";
  const blockSize = options.blockSize ?? 64;
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0)
    throw new Error(`quantize4bit: blockSize must be an even integer ≥ 2, got ${blockSize}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== values.length) throw new Error(`quantize4bit: shape [${shape}] needs ${count} values, got ${values.length}`);
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i])) throw new Error(`quantize4bit: value ${values[i]} at index ${i} is not finite`);
  const code = code4bit(type);
  const absmax = blockAbsmax(values, blockSize);
  const packed = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const scale = absmax[Math.floor(i / blockSize)];
    const q = nearest(scale > 0 ? f32(values[i] / scale) : 0, code);
    packed[i >> 1] |= i % 2 === 0 ? q << 4 : q;
  }
  // An odd count pads with one zero value, quantized like the rest (NF4: code 7), as bitsandbytes' flattened padding does.
  if (values.length % 2 === 1) packed[packed.length - 1] |= nearest(0, code);
  if (options.doubleQuant) return { type, shape: shape.slice(), blockSize, packed, nested: doubleQuantize(absmax) };
  return { type, shape: shape.slice(), blockSize, packed, absmax };
}

/** The per-block absmax of a state (dequantizing the nested constants if needed). */
export function stateAbsmax(state: QuantState4bit): Float32Array {
  if (state.absmax) return state.absmax;
  if (state.nested) return doubleDequantize(state.nested);
  throw new Error("quantize4bit: state has neither absmax nor nested constants");
}

/** Float values back (reference implementation in plain JS; the layers use tensor kernels). */
export function dequantize4bit(state: QuantState4bit): Float32Array {
  const code = code4bit(state.type);
  const absmax = stateAbsmax(state);
  const count = state.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const byte = state.packed[i >> 1];
    const q = i % 2 === 0 ? byte >> 4 : byte & 15;
    out[i] = f32(code[q] * absmax[Math.floor(i / state.blockSize)]);
  }
  return out;
}

/** Storage of a state in bits per weight: 4 + block constants (32/block, or 8/block + 32/(block·256) + offset). */
export function bitsPerParameter(state: QuantState4bit): number {
  const count = state.shape.reduce((a, b) => a * b, 1);
  const constants = state.nested
    ? state.nested.quantized.length * 8 + state.nested.absmax.length * 32 + 32
    : state.absmax!.length * 32;
  return (state.packed.length * 8 + constants) / count;
}
