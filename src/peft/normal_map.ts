/**
 * Where NF4's 16 code values come from: quantiles of N(0, 1), so that each
 * code value is equally likely for normally distributed weights, normalised to
 * [−1, 1] and with an exact zero (QLoRA §3, "4-bit NormalFloat").
 *
 * bitsandbytes' `create_normal_map(offset, use_extra_value)`: 8 positive
 * quantiles Φ⁻¹(linspace(offset, ½, 9)[:-1]) and 7 negative ones
 * −Φ⁻¹(linspace(offset, ½, 8)[:-1]) (with `use_extra_value = false`, 7 and 7),
 * a zero, sorted, divided by the largest. The offset 0.9677083 = 1 − ½(1/30 + 1/32)
 * keeps the outermost quantile finite (Φ⁻¹(1) = ∞).
 *
 * Paper: Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (2023).
 * Reference: bitsandbytes `bitsandbytes/functional.py` (`create_normal_map`).
 */
import { normalQuantile } from "../util/normal";

/** `n` evenly spaced values from `start` to `end` inclusive (numpy's / torch's `linspace`). */
function linspace(start: number, end: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => start + ((end - start) * k) / (n - 1));
}

/**
 * The distinct values of bitsandbytes' normal map, sorted: 16 (the NF4 code,
 * equal to `NF4_CODE` within float32 rounding) with `useExtraValue`, 15
 * (symmetric) without. Computed in float64, returned as float32 as bitsandbytes stores it.
 */
export function createNormalMap(offset = 0.9677083, useExtraValue = true): Float32Array {
  if (!(offset > 0.5 && offset < 1)) throw new Error(`createNormalMap: offset must lie in (0.5, 1), got ${offset}`);
  const positive = linspace(offset, 0.5, useExtraValue ? 9 : 8)
    .slice(0, -1)
    .map(normalQuantile);
  const negative = linspace(offset, 0.5, 8)
    .slice(0, -1)
    .map((p) => -normalQuantile(p));
  const values = [...positive, 0, ...negative].sort((a, b) => a - b);
  const largest = values[values.length - 1];
  return Float32Array.from(values, (value) => value / largest);
}
