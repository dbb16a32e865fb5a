/**
 * Every fused op of the project, listed once: importing this module defines (registers) all of them.
 * The engine imports it before a backend starts. To add an op, add its folder and one line here
 * (docs/KERNELS.md).
 */
export { GELU, gelu, geluComposite, GELU_KERNEL, GELU_GRAD_KERNEL } from "./gelu";
export { LAYER_NORM, layerNorm, layerNormComposite, LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL } from "./layer_norm";
export { RMS_NORM, rmsNorm, rmsNormComposite, RMS_NORM_KERNEL, RMS_NORM_GRAD_KERNEL } from "./rms_norm";
export {
  SCALED_MASKED_SOFTMAX,
  scaledMaskedSoftmax,
  scaledMaskedSoftmaxComposite,
  MASKED_SOFTMAX_KERNEL,
  SOFTMAX_GRAD_KERNEL,
} from "./masked_softmax";
export { ADAMW, adamwStep, adamwStepComposite, ADAMW_KERNEL, type AdamWStepAttrs } from "./adamw";
export {
  DEQUANTIZE,
  dequantizeBlockwise,
  dequantizeComposite,
  bytesToWords,
  DEQUANTIZE_KERNEL,
  type DequantizeAttrs,
} from "./dequantize";
export {
  QUANTIZED_MATMUL,
  quantizedMatMul,
  quantizedMatMulGrad,
  quantizedMatMulComposite,
  dequantize4bit,
  QUANTIZED_MATMUL_KERNEL,
  QUANTIZED_MATMUL_GRAD_KERNEL,
  type Quantized4bitTensors,
  type QuantizedMatMulAttrs,
} from "./quantized_matmul";
export { LINEAR_WITH_BIAS, linearWithBias, linearWithBiasComposite, BIAS_GRAD_KERNEL } from "./linear_bias";
export {
  MERGED_HEADS_ATTENTION,
  mergedHeadsAttention,
  mergedHeadsAttentionComposite,
  HEADS_MATMUL_KERNEL,
  type HeadsMatMulAttrs,
  type HeadsLayout,
} from "./merged_heads_attention";
export {
  SOFTMAX_CROSS_ENTROPY,
  softmaxCrossEntropy,
  softmaxCrossEntropyComposite,
  SOFTMAX_CROSS_ENTROPY_KERNEL,
  SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL,
} from "./softmax_cross_entropy";
export { EMBEDDING_LOOKUP, embeddingLookup, embeddingLookupComposite, EMBEDDING_GRAD_KERNEL } from "./embedding_lookup";
export {
  defineKernel,
  kernelDefinitions,
  hasFusedKernels,
  fusedBackends,
  type KernelDefinition,
  type KernelBackend,
} from "./registry";
