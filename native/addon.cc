// N-API bindings of the native kernels. Every function writes into an output
// Float32Array that JavaScript allocated (from the backend's buffer pool), so
// no memory crosses the boundary; shapes arrive as plain arrays of numbers.
#include <napi.h>

#include <string>
#include <vector>

#include "data_movement.h"
#include "elementwise.h"
#include "gemm.h"
#include "norms.h"
#include "optimizer.h"
#include "quantized_matmul.h"
#include "reductions.h"
#include "softmax.h"
#include "thread_pool.h"

namespace {

using mllm::Binary;
using mllm::Reduce;
using mllm::Unary;

template <typename T>
T* data_of(const Napi::Value& value, const char* what, size_t* length = nullptr) {
  auto array = value.As<Napi::TypedArrayOf<T>>();
  if (length) *length = array.ElementLength();
  return array.Data();
}

std::vector<int64_t> shape_of(const Napi::Value& value) {
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) shape[i] = array.Get(i).As<Napi::Number>().Int64Value();
  return shape;
}

int64_t int_of(const Napi::Value& value) { return value.As<Napi::Number>().Int64Value(); }

// An op code from JavaScript as its enum (op_codes.h); false, with a TypeError naming the bad code, when out of range.
template <typename Enum>
bool code_of(const Napi::CallbackInfo& info, const Napi::Value& value, int count, const char* what, Enum* out) {
  const int64_t code = int_of(value);
  if (code < 0 || code >= count) {
    Napi::TypeError::New(info.Env(), std::string(what) + " code " + std::to_string(code) + " is not in [0, " + std::to_string(count - 1) +
                                         "] (src/engine/native/op_codes.ts)")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<Enum>(code);
  return true;
}

bool check_args(const Napi::CallbackInfo& info, size_t n, const char* name) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), std::string(name) + ": expected " + std::to_string(n) + " arguments").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// matmul(a, b, out, batch, M, N, K, transA, transB, strideA, strideB, strideC)
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  if (!check_args(info, 12, "matmul")) return info.Env().Undefined();
  mllm::GemmArgs g;
  g.A = data_of<float>(info[0], "a");
  g.B = data_of<float>(info[1], "b");
  g.C = data_of<float>(info[2], "out");
  g.batch = int_of(info[3]);
  g.M = int_of(info[4]);
  g.N = int_of(info[5]);
  g.K = int_of(info[6]);
  g.transA = info[7].As<Napi::Boolean>().Value();
  g.transB = info[8].As<Napi::Boolean>().Value();
  g.strideA = int_of(info[9]);
  g.strideB = int_of(info[10]);
  g.strideC = int_of(info[11]);
  mllm::sgemm_batched(g);
  return info.Env().Undefined();
}

// binary(op, a, aShape, b, bShape, out, outShape)
Napi::Value BinaryOp(const Napi::CallbackInfo& info) {
  Binary op;
  if (!check_args(info, 7, "binary") || !code_of(info, info[0], mllm::kBinaryCount, "binary op", &op)) return info.Env().Undefined();
  mllm::binary(op, data_of<float>(info[1], "a"), shape_of(info[2]), data_of<float>(info[3], "b"), shape_of(info[4]),
               data_of<float>(info[5], "out"), shape_of(info[6]));
  return info.Env().Undefined();
}

// unary(op, x, out)
Napi::Value UnaryOp(const Napi::CallbackInfo& info) {
  Unary op;
  if (!check_args(info, 3, "unary") || !code_of(info, info[0], mllm::kUnaryCount, "unary op", &op)) return info.Env().Undefined();
  size_t n = 0;
  const float* x = data_of<float>(info[1], "x", &n);
  mllm::unary(op, x, data_of<float>(info[2], "out"), static_cast<int64_t>(n));
  return info.Env().Undefined();
}

// softmax(x, out, rows, cols)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  if (!check_args(info, 4, "softmax")) return info.Env().Undefined();
  mllm::softmax_rows(data_of<float>(info[0], "x"), data_of<float>(info[1], "out"), int_of(info[2]), int_of(info[3]));
  return info.Env().Undefined();
}

// reduce(kind, x, out, rows, cols)
Napi::Value ReduceRows(const Napi::CallbackInfo& info) {
  Reduce kind;
  if (!check_args(info, 5, "reduce") || !code_of(info, info[0], mllm::kReduceCount, "reduce kind", &kind)) return info.Env().Undefined();
  mllm::reduce_rows(kind, data_of<float>(info[1], "x"), data_of<float>(info[2], "out"), int_of(info[3]), int_of(info[4]));
  return info.Env().Undefined();
}

// reduceColumns(kind, x, out, rows, cols)
Napi::Value ReduceColumns(const Napi::CallbackInfo& info) {
  Reduce kind;
  if (!check_args(info, 5, "reduceColumns") || !code_of(info, info[0], mllm::kReduceCount, "reduce kind", &kind)) return info.Env().Undefined();
  mllm::reduce_cols(kind, data_of<float>(info[1], "x"), data_of<float>(info[2], "out"), int_of(info[3]), int_of(info[4]));
  return info.Env().Undefined();
}

// transpose(x, shape, perm, out)
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  if (!check_args(info, 4, "transpose")) return info.Env().Undefined();
  mllm::transpose(data_of<float>(info[0], "x"), shape_of(info[1]), shape_of(info[2]), data_of<float>(info[3], "out"));
  return info.Env().Undefined();
}

// gather(x, outer, axisSize, inner, indices, out)
Napi::Value Gather(const Napi::CallbackInfo& info) {
  if (!check_args(info, 6, "gather")) return info.Env().Undefined();
  size_t count = 0;
  const int32_t* indices = data_of<int32_t>(info[4], "indices", &count);
  mllm::gather(data_of<float>(info[0], "x"), int_of(info[1]), int_of(info[2]), int_of(info[3]), indices, static_cast<int64_t>(count), data_of<float>(info[5], "out"));
  return info.Env().Undefined();
}

// segmentSum(x, ids, inner, segments, out)
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  if (!check_args(info, 5, "segmentSum")) return info.Env().Undefined();
  size_t count = 0;
  const int32_t* ids = data_of<int32_t>(info[1], "ids", &count);
  mllm::unsorted_segment_sum(data_of<float>(info[0], "x"), ids, static_cast<int64_t>(count), int_of(info[2]), int_of(info[3]), data_of<float>(info[4], "out"));
  return info.Env().Undefined();
}

// layerNorm(x, gamma, beta, rows, D, eps, y, mean, rstd)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  if (!check_args(info, 9, "layerNorm")) return info.Env().Undefined();
  mllm::layer_norm_forward(data_of<float>(info[0], "x"), data_of<float>(info[1], "gamma"), data_of<float>(info[2], "beta"), int_of(info[3]), int_of(info[4]),
                           static_cast<float>(info[5].As<Napi::Number>().DoubleValue()), data_of<float>(info[6], "y"), data_of<float>(info[7], "mean"),
                           data_of<float>(info[8], "rstd"));
  return info.Env().Undefined();
}

// layerNormGrad(dy, x, gamma, mean, rstd, rows, D, dx, dgamma, dbeta)
Napi::Value LayerNormGrad(const Napi::CallbackInfo& info) {
  if (!check_args(info, 10, "layerNormGrad")) return info.Env().Undefined();
  mllm::layer_norm_backward(data_of<float>(info[0], "dy"), data_of<float>(info[1], "x"), data_of<float>(info[2], "gamma"), data_of<float>(info[3], "mean"),
                            data_of<float>(info[4], "rstd"), int_of(info[5]), int_of(info[6]), data_of<float>(info[7], "dx"), data_of<float>(info[8], "dgamma"),
                            data_of<float>(info[9], "dbeta"));
  return info.Env().Undefined();
}

// adamw(p, g, m, v, lr, beta1, beta2, eps, weightDecay, biasCorrection1, biasCorrection2, pOut, mOut, vOut)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  if (!check_args(info, 14, "adamw")) return info.Env().Undefined();
  size_t n = 0;
  const float* p = data_of<float>(info[0], "p", &n);
  auto number = [&](int i) { return static_cast<float>(info[i].As<Napi::Number>().DoubleValue()); };
  mllm::adamw_update(p, data_of<float>(info[1], "g"), data_of<float>(info[2], "m"), data_of<float>(info[3], "v"), static_cast<int64_t>(n), number(4), number(5),
                     number(6), number(7), number(8), number(9), number(10), data_of<float>(info[11], "pOut"), data_of<float>(info[12], "mOut"),
                     data_of<float>(info[13], "vOut"));
  return info.Env().Undefined();
}

// quantizedMatmul(x, rows, packed, code, absmax | null, absmaxCodes | null, nestedCode | null, nestedAbsmax | null,
//                 offset, outFeatures, inFeatures, blockSize, nestedBlockSize, transposeWeight, out)
// transposeWeight: out [rows, outFeatures] = x · Wᵀ; otherwise out [rows, inFeatures] = x · W. Packed codes and
// 8-bit absmax codes arrive as the int32 words that hold their bytes (little-endian).
Napi::Value QuantizedMatmul(const Napi::CallbackInfo& info) {
  if (!check_args(info, 15, "quantizedMatmul")) return info.Env().Undefined();
  auto fail = [&](const std::string& message) {
    Napi::TypeError::New(info.Env(), "quantizedMatmul: " + message).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  };
  mllm::Quantized4bitWeight w{};
  const int64_t rows = int_of(info[1]);
  w.out_features = int_of(info[9]);
  w.in_features = int_of(info[10]);
  w.block_size = int_of(info[11]);
  w.nested_block_size = int_of(info[12]);
  const bool transpose_weight = info[13].As<Napi::Boolean>().Value();
  if (rows < 0 || w.out_features <= 0 || w.in_features <= 0 || w.block_size <= 0)
    return fail("rows " + std::to_string(rows) + ", outFeatures " + std::to_string(w.out_features) + ", inFeatures " + std::to_string(w.in_features) +
                ", blockSize " + std::to_string(w.block_size) + ": expected rows ≥ 0 and the others > 0");
  const int64_t count = w.out_features * w.in_features;
  const int64_t blocks = (count + w.block_size - 1) / w.block_size;
  size_t n = 0;
  const float* x = data_of<float>(info[0], "x", &n);
  const int64_t x_cols = transpose_weight ? w.in_features : w.out_features;
  if (static_cast<int64_t>(n) != rows * x_cols)
    return fail("x has " + std::to_string(n) + " values; expected rows · " + std::to_string(x_cols) + " = " + std::to_string(rows * x_cols));
  w.packed = reinterpret_cast<const uint8_t*>(data_of<int32_t>(info[2], "packed", &n));
  if (static_cast<int64_t>(n) * 4 < (count + 1) / 2)
    return fail("packed holds " + std::to_string(n * 4) + " bytes; a [" + std::to_string(w.out_features) + ", " + std::to_string(w.in_features) +
                "] weight needs " + std::to_string((count + 1) / 2));
  w.code = data_of<float>(info[3], "code", &n);
  if (n != 16) return fail("code has " + std::to_string(n) + " values; expected 16");
  if (!info[4].IsNull()) {
    w.absmax = data_of<float>(info[4], "absmax", &n);
    if (static_cast<int64_t>(n) < blocks) return fail("absmax has " + std::to_string(n) + " values; expected " + std::to_string(blocks));
  } else {
    if (info[5].IsNull() || info[6].IsNull() || info[7].IsNull()) return fail("without absmax, absmaxCodes, nestedCode and nestedAbsmax are required");
    if (w.nested_block_size <= 0) return fail("nestedBlockSize " + std::to_string(w.nested_block_size) + ": expected > 0");
    w.absmax_codes = reinterpret_cast<const uint8_t*>(data_of<int32_t>(info[5], "absmaxCodes", &n));
    if (static_cast<int64_t>(n) * 4 < blocks) return fail("absmaxCodes holds " + std::to_string(n * 4) + " bytes; expected " + std::to_string(blocks));
    w.nested_code = data_of<float>(info[6], "nestedCode", &n);
    if (n != 256) return fail("nestedCode has " + std::to_string(n) + " values; expected 256");
    w.nested_absmax = data_of<float>(info[7], "nestedAbsmax", &n);
    const int64_t nested_blocks = (blocks + w.nested_block_size - 1) / w.nested_block_size;
    if (static_cast<int64_t>(n) < nested_blocks)
      return fail("nestedAbsmax has " + std::to_string(n) + " values; expected " + std::to_string(nested_blocks));
  }
  w.offset = static_cast<float>(info[8].As<Napi::Number>().DoubleValue());
  float* out = data_of<float>(info[14], "out", &n);
  const int64_t out_cols = transpose_weight ? w.out_features : w.in_features;
  if (static_cast<int64_t>(n) != rows * out_cols)
    return fail("out has " + std::to_string(n) + " values; expected " + std::to_string(rows * out_cols));
  if (rows == 0) return info.Env().Undefined();
  if (transpose_weight)
    mllm::quantized_matmul_xwt(x, rows, w, out);
  else
    mllm::quantized_matmul_xw(x, rows, w, out);
  return info.Env().Undefined();
}

// rmsNorm(x, weight, rows, D, eps, y, rstd)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  if (!check_args(info, 7, "rmsNorm")) return info.Env().Undefined();
  mllm::rms_norm_forward(data_of<float>(info[0], "x"), data_of<float>(info[1], "weight"), int_of(info[2]), int_of(info[3]),
                         static_cast<float>(info[4].As<Napi::Number>().DoubleValue()), data_of<float>(info[5], "y"), data_of<float>(info[6], "rstd"));
  return info.Env().Undefined();
}

// rmsNormGrad(dy, x, weight, rstd, rows, D, dx, dweight)
Napi::Value RmsNormGrad(const Napi::CallbackInfo& info) {
  if (!check_args(info, 8, "rmsNormGrad")) return info.Env().Undefined();
  mllm::rms_norm_backward(data_of<float>(info[0], "dy"), data_of<float>(info[1], "x"), data_of<float>(info[2], "weight"), data_of<float>(info[3], "rstd"),
                          int_of(info[4]), int_of(info[5]), data_of<float>(info[6], "dx"), data_of<float>(info[7], "dweight"));
  return info.Env().Undefined();
}

// maskedSoftmax(x, mask | null, maskRows, scale, y, rows, cols)
Napi::Value MaskedSoftmax(const Napi::CallbackInfo& info) {
  if (!check_args(info, 7, "maskedSoftmax")) return info.Env().Undefined();
  const float* mask = info[1].IsNull() ? nullptr : data_of<float>(info[1], "mask");
  mllm::scaled_masked_softmax(data_of<float>(info[0], "x"), mask, int_of(info[2]), static_cast<float>(info[3].As<Napi::Number>().DoubleValue()),
                              data_of<float>(info[4], "y"), int_of(info[5]), int_of(info[6]));
  return info.Env().Undefined();
}

// softmaxGrad(y, dy, scale, dx, rows, cols)
Napi::Value SoftmaxGrad(const Napi::CallbackInfo& info) {
  if (!check_args(info, 6, "softmaxGrad")) return info.Env().Undefined();
  mllm::scaled_softmax_backward(data_of<float>(info[0], "y"), data_of<float>(info[1], "dy"), static_cast<float>(info[2].As<Napi::Number>().DoubleValue()),
                                data_of<float>(info[3], "dx"), int_of(info[4]), int_of(info[5]));
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("gemmKernel", mllm::gemm_kernel_name());
  out.Set("threads", mllm::thread_count());
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (!check_args(info, 1, "setThreads")) return info.Env().Undefined();
  mllm::set_thread_count(static_cast<int>(int_of(info[0])));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, MatMul));
  exports.Set("binary", Napi::Function::New(env, BinaryOp));
  exports.Set("unary", Napi::Function::New(env, UnaryOp));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("reduce", Napi::Function::New(env, ReduceRows));
  exports.Set("reduceColumns", Napi::Function::New(env, ReduceColumns));
  exports.Set("transpose", Napi::Function::New(env, Transpose));
  exports.Set("gather", Napi::Function::New(env, Gather));
  exports.Set("segmentSum", Napi::Function::New(env, SegmentSum));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGrad));
  exports.Set("maskedSoftmax", Napi::Function::New(env, MaskedSoftmax));
  exports.Set("softmaxGrad", Napi::Function::New(env, SoftmaxGrad));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("rmsNormGrad", Napi::Function::New(env, RmsNormGrad));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("quantizedMatmul", Napi::Function::New(env, QuantizedMatmul));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  return exports;
}

}  // namespace

NODE_API_MODULE(mllm_native, Init)
