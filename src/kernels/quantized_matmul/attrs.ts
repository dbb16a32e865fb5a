import type * as tf from "@tensorflow/tfjs";

/**
 * A 4-bit blockwise-quantized weight W [outFeatures, inFeatures] as tensors (src/peft/quantize_4bit.ts defines
 * the layout): codes packed two a byte (high nibble first), the bytes in int32 words; block constants as
 * float32, or, with double quantization, as 8-bit codes (in int32 words) into a 256-value code with float32
 * second-level constants and an offset.
 */
export interface Quantized4bitTensors {
  /** [outFeatures, inFeatures] */
  readonly shape: readonly [number, number];
  /** Values per block constant. */
  readonly blockSize: number;
  /** int32 words holding ⌈out·in / 2⌉ bytes. */
  readonly packed: tf.Tensor1D;
  /** The 4-bit code (NF4 or FP4): 16 values (a table of the format, not a tensor: nothing per layer holds it). */
  readonly code: Float32Array;
  /** float32 [blocks], without double quantization. */
  readonly absmax?: tf.Tensor1D;
  /** The double quantization of the block constants. */
  readonly nested?: {
    /** int32 words holding one byte per block. */
    readonly packed: tf.Tensor1D;
    /** The signed dynamic map: 256 values. */
    readonly code: Float32Array;
    /** float32 [⌈blocks / blockSize⌉] */
    readonly absmax: tf.Tensor1D;
    /** Added after dequantizing (the mean subtracted before quantizing). */
    readonly offset: number;
    readonly blockSize: number;
  };
}

/** The attributes of kernels `MllmQuantizedMatMul` (x · Wᵀ) and `MllmQuantizedMatMulGrad` (dy · W). */
export interface QuantizedMatMulAttrs {
  outFeatures: number;
  inFeatures: number;
  blockSize: number;
  /** 0 without double quantization. */
  nestedBlockSize: number;
  /** The double quantization's offset (0 without). */
  offset: number;
  /** The 4-bit code, 16 values. */
  code: Float32Array;
  /** The 8-bit code of the block constants, 256 values (empty without double quantization). */
  nestedCode: Float32Array;
}
