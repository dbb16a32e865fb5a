/**
 * A 4-bit weight as tensors (QLoRA's frozen base weight): codes packed eight
 * to an int32 word, block constants as float32 — or, with double
 * quantization, as 8-bit codes plus float32 second-level constants and an
 * offset. Dequantized on the fly inside a forward pass (and freed after it):
 * the float weight never stays in memory.
 *
 * Reference: bitsandbytes `nn/modules.py` (`Params4bit`, `Linear4bit`), `functional.py` (`QuantState`).
 */
import * as tf from "@tensorflow/tfjs";
import type { WeightSource } from "../nn/linear";
import { code4bit, dynamicMap, quantize4bit, type QuantState4bit, type QuantType } from "./quantize_4bit";
import { bytesToWords } from "../kernels/dequantize";
import { dequantize4bit, quantizedMatMul, type Quantized4bitTensors } from "../kernels/quantized_matmul";

const DYNAMIC_MAP = dynamicMap();

export class QuantizedWeight4bit implements WeightSource {
  readonly shape: readonly [number, number];
  readonly type: QuantType;
  readonly blockSize: number;
  /** int32 words holding the packed 4-bit codes. */
  private readonly packed: tf.Tensor1D;
  /** float32 [blocks] (no double quantization). */
  private readonly absmax: tf.Tensor1D | undefined;
  /** Double quantization: 8-bit codes as int32 words, float32 [ceil(blocks / 256)], scalar offset. */
  private readonly nested:
    { packed: tf.Tensor1D; absmax: tf.Tensor1D; offset: tf.Scalar; blockSize: number; count: number } | undefined;

  constructor(readonly state: QuantState4bit) {
    if (state.shape.length !== 2) throw new Error(`QuantizedWeight4bit: expected a 2-D weight, got shape [${state.shape}]`);
    this.shape = [state.shape[0], state.shape[1]];
    this.type = state.type;
    this.blockSize = state.blockSize;
    this.packed = tf.tensor1d(bytesToWords(state.packed), "int32");
    if (state.nested) {
      const nested = state.nested;
      this.absmax = undefined;
      this.nested = {
        packed: tf.tensor1d(bytesToWords(nested.quantized), "int32"),
        absmax: tf.tensor1d(nested.absmax),
        offset: tf.scalar(nested.offset),
        blockSize: nested.blockSize,
        count: nested.quantized.length,
      };
    } else {
      this.absmax = tf.tensor1d(state.absmax!);
      this.nested = undefined;
    }
  }

  /** Quantizes a float weight [out, in] (its values are read asynchronously). */
  static async fromTensor(
    weight: tf.Tensor,
    options: { type?: QuantType; blockSize?: number; doubleQuant?: boolean } = {},
  ): Promise<QuantizedWeight4bit> {
    const values = (await weight.data()) as Float32Array;
    return new QuantizedWeight4bit(quantize4bit(values, weight.shape, options));
  }

  /** The weight's tensors as the quantized product reads them (the code tables are the format's constants, not tensors). */
  get tensors(): Quantized4bitTensors {
    const nested = this.nested;
    return {
      shape: this.shape,
      blockSize: this.blockSize,
      packed: this.packed,
      code: code4bit(this.type),
      absmax: this.absmax,
      nested: nested && {
        packed: nested.packed,
        code: DYNAMIC_MAP,
        absmax: nested.absmax,
        offset: this.state.nested!.offset,
        blockSize: nested.blockSize,
      },
    };
  }

  /** → float32 [out, in] (a new tensor: dispose it, or call inside tf.tidy). */
  dequantize(): tf.Tensor2D {
    return dequantize4bit(this.tensors);
  }

  /**
   * x: [N, in] → x · Wᵀ [N, out], differentiable in x, without a float copy of W: on `native` one C++ kernel
   * dequantizes W panel by panel into the product; elsewhere W is dequantized, multiplied and freed, and
   * dequantized again for the gradient (src/kernels/quantized_matmul/).
   */
  matMul(x: tf.Tensor2D): tf.Tensor2D {
    return quantizedMatMul(x, this.tensors);
  }

  /** Bytes held by this weight's tensors (the engine's accounting: 4 bytes per int32 or float32 element). */
  get bytes(): number {
    const tensors = [this.packed, this.absmax, this.nested?.packed, this.nested?.absmax, this.nested?.offset].filter(
      Boolean,
    ) as tf.Tensor[];
    return tensors.reduce((sum, tensor) => sum + tensor.size * 4, 0);
  }

  dispose(): void {
    tf.dispose(
      [this.packed, this.absmax, this.nested?.packed, this.nested?.absmax, this.nested?.offset].filter(Boolean) as tf.Tensor[],
    );
  }
}
