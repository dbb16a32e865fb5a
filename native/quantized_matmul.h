// Matrix products with a 4-bit blockwise-quantized weight (QLoRA's NF4 / FP4), float32, without
// materialising the float weight: the weight is dequantized one panel at a time into a scratch buffer
// (at most 2^18 values — 1 MiB — of it, in whole rows or columns) that the blocked GEMM (gemm.h) consumes.
//
// The weight W [out, in] is stored as bitsandbytes stores it (src/peft/quantize_4bit.ts): element i of the
// row-major flattening has code q = high nibble of byte i/2 for even i, low nibble for odd i, and value
// code[q] · absmax[i / blockSize]. With double quantization the block constants are themselves 8-bit:
// absmax[b] = (nestedCode[byte b] · nestedAbsmax[b / nestedBlockSize]) + offset, each step rounded to float32.
//
// Paper: Dettmers et al., "QLoRA" (2023). Reference: bitsandbytes `functional.py` (`dequantize_4bit`,
// `dequantize_blockwise`), its fused inference kernel `kgemm_4bit_inference`.
#pragma once
#include <cstdint>

namespace mllm {

struct Quantized4bitWeight {
  int64_t out_features, in_features, block_size;
  const uint8_t* packed;  // ceil(out·in / 2) bytes
  const float* code;      // 16 values
  // Either the float32 block constants ...
  const float* absmax;  // [blocks], or nullptr with double quantization
  // ... or their 8-bit double quantization.
  const uint8_t* absmax_codes;   // [blocks]
  const float* nested_code;      // 256 values
  const float* nested_absmax;    // [ceil(blocks / nested_block_size)]
  float offset;
  int64_t nested_block_size;
};

// y [rows, out] = x [rows, in] · Wᵀ (the forward of a linear layer).
void quantized_matmul_xwt(const float* x, int64_t rows, const Quantized4bitWeight& w, float* y);
// dx [rows, in] = dy [rows, out] · W (its gradient with respect to x).
void quantized_matmul_xw(const float* dy, int64_t rows, const Quantized4bitWeight& w, float* dx);

}  // namespace mllm
