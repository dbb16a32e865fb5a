// Element-wise kernels: broadcasting binary ops, unary ops, and GELU (tanh) with its gradient, vectorised with AVX2.
#include "elementwise.h"

#include <cmath>
#include <limits>
#include <vector>

#include "parallel.h"
#include "simd.h"

namespace mllm {
namespace {

#ifdef MLLM_X86
// gelu_tanh over n values: x / (1 + e^(−2u)), u = √(2/π)(x + 0.044715x³).
__attribute__((target("avx2,fma"))) void gelu_avx2(const float* x, float* out, int64_t n) {
  const __m256 k2 = _mm256_set1_ps(-1.5957691216057308f), c = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
    _mm256_storeu_ps(out + i, _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_mul_ps(k2, inner)))));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    out[i] = v / (1.0f + std::exp(-1.5957691216057308f * (v + 0.044715f * v * v * v)));
  }
}

// dy · gelu_tanh'(x) over n values.
__attribute__((target("avx2,fma"))) void gelu_grad_avx2(const float* x, const float* dy, float* out, int64_t n) {
  const __m256 k = _mm256_set1_ps(0.7978845608028654f), c = _mm256_set1_ps(0.044715f), c3 = _mm256_set1_ps(3.0f * 0.044715f);
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f), two = _mm256_set1_ps(2.0f), minus_two = _mm256_set1_ps(-2.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 v2 = _mm256_mul_ps(v, v);
    const __m256 u = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, v), v2, v));
    const __m256 t = _mm256_sub_ps(_mm256_div_ps(two, _mm256_add_ps(one, exp8(_mm256_mul_ps(minus_two, u)))), one);  // tanh(u)
    const __m256 left = _mm256_mul_ps(half, _mm256_add_ps(one, t));
    const __m256 right = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_mul_ps(_mm256_fnmadd_ps(t, t, one), _mm256_mul_ps(k, _mm256_fmadd_ps(c3, v2, one))));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_add_ps(left, right)));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    const float t = 2.0f / (1.0f + std::exp(-2.0f * 0.7978845608028654f * (v + 0.044715f * v * v * v))) - 1.0f;
    out[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * v * v));
  }
}
#endif

template <Binary op>
inline float apply(float x, float y) {
  switch (op) {
    case Binary::Add: return x + y;
    case Binary::Sub: return x - y;
    case Binary::Multiply: return x * y;
    case Binary::RealDiv: return x / y;
    case Binary::Maximum: return (std::isnan(x) || std::isnan(y)) ? std::numeric_limits<float>::quiet_NaN() : (x > y ? x : y);
    case Binary::Minimum: return (std::isnan(x) || std::isnan(y)) ? std::numeric_limits<float>::quiet_NaN() : (x < y ? x : y);
    case Binary::SquaredDifference: return (x - y) * (x - y);
    case Binary::Pow: return std::pow(x, y);
    case Binary::GeluTanhGrad: {
      // d/dx 0.5·x·(1 + tanh(u)), u = k(x + c·x³): 0.5(1 + t) + 0.5·x·(1 − t²)·k(1 + 3c·x²)
      const float k = 0.7978845608028654f, c = 0.044715f;
      const float t = 2.0f / (1.0f + std::exp(-2.0f * k * (x + c * x * x * x))) - 1.0f;  // tanh(u) via one exp
      return y * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * c * x * x));
    }
  }
  return 0.0f;
}

// Strides of `shape` aligned to an output of rank `rank`, 0 on broadcast axes.
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, const std::vector<int64_t>& out) {
  const size_t rank = out.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t axis = shape.size() - 1 - i;
    const size_t outAxis = rank - 1 - i;
    strides[outAxis] = shape[axis] == 1 ? 0 : stride;
    stride *= shape[axis];
  }
  return strides;
}

template <Binary op>
void binary_impl(const float* a, const std::vector<int64_t>& aShape, const float* b, const std::vector<int64_t>& bShape, float* out,
                 const std::vector<int64_t>& outShape) {
  const int64_t n = product(outShape);
  const int64_t na = product(aShape);
  const int64_t nb = product(bShape);
  if (na == n && nb == n) {
    chunked(n, kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) out[i] = apply<op>(a[i], b[i]);
    });
    return;
  }
  if (nb == 1 && na == n) {
    const float y = b[0];
    chunked(n, kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) out[i] = apply<op>(a[i], y);
    });
    return;
  }
  if (na == 1 && nb == n) {
    const float x = a[0];
    chunked(n, kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) out[i] = apply<op>(x, b[i]);
    });
    return;
  }
  // Row broadcast: one operand is the output's trailing row (e.g. a bias [D] on [B, T, D]).
  const int64_t inner = outShape.empty() ? 1 : outShape.back();
  if (na == n && nb == inner && n % inner == 0 && !bShape.empty() && bShape.back() == inner) {
    chunked(n / inner, std::max<int64_t>(1, kGrain / inner), [&](int64_t s, int64_t e) {
      for (int64_t r = s; r < e; ++r)
        for (int64_t c = 0; c < inner; ++c) out[r * inner + c] = apply<op>(a[r * inner + c], b[c]);
    });
    return;
  }
  if (nb == n && na == inner && n % inner == 0 && !aShape.empty() && aShape.back() == inner) {
    chunked(n / inner, std::max<int64_t>(1, kGrain / inner), [&](int64_t s, int64_t e) {
      for (int64_t r = s; r < e; ++r)
        for (int64_t c = 0; c < inner; ++c) out[r * inner + c] = apply<op>(a[c], b[r * inner + c]);
    });
    return;
  }
  // General case: walk the output with an index counter over the last axis.
  const std::vector<int64_t> sa = broadcast_strides(aShape, outShape);
  const std::vector<int64_t> sb = broadcast_strides(bShape, outShape);
  const size_t rank = outShape.size();
  const int64_t rows = n / inner;
  chunked(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t s, int64_t e) {
    std::vector<int64_t> index(rank, 0);
    for (int64_t r = s; r < e; ++r) {
      int64_t rest = r, offA = 0, offB = 0;
      for (size_t axis = rank - 1; axis-- > 0;) {
        const int64_t i = rest % outShape[axis];
        rest /= outShape[axis];
        offA += i * sa[axis];
        offB += i * sb[axis];
      }
      const int64_t strideA = sa[rank - 1], strideB = sb[rank - 1];
      float* o = out + r * inner;
      for (int64_t c = 0; c < inner; ++c) o[c] = apply<op>(a[offA + c * strideA], b[offB + c * strideB]);
    }
  });
}

inline float gelu_tanh(float x) {
  // 0.5·(1 + tanh(u)) = sigmoid(2u): one exp instead of a tanh.
  const float k2 = 1.5957691216057308f;  // 2·√(2/π)
  return x / (1.0f + std::exp(-k2 * (x + 0.044715f * x * x * x)));
}

}  // namespace

void binary(Binary op, const float* a, const std::vector<int64_t>& aShape, const float* b, const std::vector<int64_t>& bShape, float* out,
            const std::vector<int64_t>& outShape) {
  switch (op) {
    case Binary::Add: return binary_impl<Binary::Add>(a, aShape, b, bShape, out, outShape);
    case Binary::Sub: return binary_impl<Binary::Sub>(a, aShape, b, bShape, out, outShape);
    case Binary::Multiply: return binary_impl<Binary::Multiply>(a, aShape, b, bShape, out, outShape);
    case Binary::RealDiv: return binary_impl<Binary::RealDiv>(a, aShape, b, bShape, out, outShape);
    case Binary::Maximum: return binary_impl<Binary::Maximum>(a, aShape, b, bShape, out, outShape);
    case Binary::Minimum: return binary_impl<Binary::Minimum>(a, aShape, b, bShape, out, outShape);
    case Binary::SquaredDifference: return binary_impl<Binary::SquaredDifference>(a, aShape, b, bShape, out, outShape);
    case Binary::Pow: return binary_impl<Binary::Pow>(a, aShape, b, bShape, out, outShape);
    case Binary::GeluTanhGrad:
#ifdef MLLM_X86
      if (has_avx2() && product(aShape) == product(outShape) && product(bShape) == product(outShape)) {
        chunked(product(outShape), kGrain / 4, [&](int64_t s, int64_t e) { gelu_grad_avx2(a + s, b + s, out + s, e - s); });
        return;
      }
#endif
      return binary_impl<Binary::GeluTanhGrad>(a, aShape, b, bShape, out, outShape);
  }
}

void unary(Unary op, const float* x, float* out, int64_t n) {
#ifdef MLLM_X86
  if (op == Unary::GeluTanh && has_avx2()) {
    chunked(n, kGrain / 4, [&](int64_t s, int64_t e) { gelu_avx2(x + s, out + s, e - s); });
    return;
  }
#endif
  chunked(n, kGrain / 4, [&](int64_t s, int64_t e) {
    switch (op) {
      case Unary::Exp: for (int64_t i = s; i < e; ++i) out[i] = std::exp(x[i]); break;
      case Unary::Log: for (int64_t i = s; i < e; ++i) out[i] = std::log(x[i]); break;
      case Unary::Sqrt: for (int64_t i = s; i < e; ++i) out[i] = std::sqrt(x[i]); break;
      case Unary::Rsqrt: for (int64_t i = s; i < e; ++i) out[i] = 1.0f / std::sqrt(x[i]); break;
      case Unary::Tanh: for (int64_t i = s; i < e; ++i) out[i] = std::tanh(x[i]); break;
      case Unary::Sigmoid: for (int64_t i = s; i < e; ++i) out[i] = 1.0f / (1.0f + std::exp(-x[i])); break;
      case Unary::Relu: for (int64_t i = s; i < e; ++i) out[i] = std::isnan(x[i]) ? x[i] : (x[i] > 0.0f ? x[i] : 0.0f); break;
      case Unary::Neg: for (int64_t i = s; i < e; ++i) out[i] = -x[i]; break;
      case Unary::Abs: for (int64_t i = s; i < e; ++i) out[i] = std::fabs(x[i]); break;
      case Unary::Square: for (int64_t i = s; i < e; ++i) out[i] = x[i] * x[i]; break;
      case Unary::GeluTanh: for (int64_t i = s; i < e; ++i) out[i] = gelu_tanh(x[i]); break;
      case Unary::Reciprocal: for (int64_t i = s; i < e; ++i) out[i] = 1.0f / x[i]; break;
    }
  });
}

}  // namespace mllm
