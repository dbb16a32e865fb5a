/**
 * `quantize(model, {type: "nf4", doubleQuant})`: turns a loaded model's
 * linear layers into 4-bit layers (QLoRA's base), reporting each layer's
 * quantization error. LoRA adapters added afterwards train in float32 on top;
 * gradients reach only them (the packed weight is not a variable).
 *
 * Paper: Dettmers et al., "QLoRA" (2023). Reference: transformers
 * `integrations/bitsandbytes.py` (`replace_with_bnb_linear`; `lm_head` is kept in float by default).
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { QuantizedWeight4bit } from "./quantized_weight";
import type { QuantType } from "./quantize_4bit";
import { matchesTarget, isAdapterPath } from "./module_paths";

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** `nf4` (default) or `fp4`. */
  type?: QuantType;
  /** Quantize the block constants too (QLoRA's double quantization). Default false. */
  doubleQuant?: boolean;
  /** Values per block. Default 64. */
  blockSize?: number;
  /** Layers left in float32, by name as LoRA targets match (default `["lm_head"]`, as transformers does). */
  skipModules?: readonly string[];
}

/** One quantized layer's report. */
export interface QuantizedLayerReport {
  readonly name: string;
  readonly shape: readonly [number, number];
  /** max |W − dequantize(quantize(W))| */
  readonly maxAbsError: number;
  /** ‖W − Ŵ‖ / ‖W‖ */
  readonly relativeError: number;
  /** Storage per weight in bits, from the tensors' bytes. */
  readonly bitsPerParameter: number;
}

export async function quantize(model: Module, options: QuantizeOptions = {}): Promise<QuantizedLayerReport[]> {
  const skip = options.skipModules ?? ["lm_head"];
  const reports: QuantizedLayerReport[] = [];
  for (const [name, module] of model.namedModules()) {
    if (!(module instanceof Linear) || module.quantizedWeight || isAdapterPath(name) || matchesTarget(name, skip)) continue;
    const weight = module.weight;
    const quantized = await QuantizedWeight4bit.fromTensor(weight, options);
    const errors = tf.tidy(() => {
      const restored = quantized.dequantize();
      const difference = weight.sub(restored);
      return tf.stack([
        difference.abs().max(),
        difference.square().sum().sqrt().div(weight.square().sum().sqrt().maximum(1e-30)),
      ]);
    });
    const [maxAbsError, relativeError] = Array.from(await errors.data());
    errors.dispose();
    module.setQuantizedWeight(quantized);
    reports.push({
      name,
      shape: quantized.shape,
      maxAbsError,
      relativeError,
      bitsPerParameter: (quantized.bytes * 8) / (quantized.shape[0] * quantized.shape[1]),
    });
  }
  if (!reports.length) throw new Error("quantize: the model has no float Linear layers to quantize");
  return reports;
}
