#include "elementwise.h"

#include <vector>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MLLM_X86 1
#endif

namespace mllm {
namespace {

#ifdef MLLM_X86
bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// e^x for 8 floats: Cephes' expf (as in avx_mathfun): x = n·ln2 + r, a degree-5 polynomial for e^r, 2^n
// from the exponent bits; about 1 ulp. Inputs below −87.3 give exactly 0 (masked attention scores).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(exponent));
  return _mm256_andnot_ps(tiny, y);
}

// o[c] = exp(o[c] − max) for c in [0, n); returns the sum.
__attribute__((target("avx2,fma"))) float exp_shift_sum_avx2(float* o, int64_t n, float max) {
  __m256 acc = _mm256_setzero_ps();
  const __m256 m = _mm256_set1_ps(max);
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(o + c), m));
    _mm256_storeu_ps(o + c, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float part[8];
  _mm256_store_ps(part, acc);
  float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; c < n; ++c) sum += (o[c] = std::exp(o[c] - max));
  return sum;
}

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

// o[c] = exp(o[c] − max); returns Σ o[c].
inline float exp_shift_sum(float* o, int64_t n, float max) {
#ifdef MLLM_X86
  if (has_avx2()) return exp_shift_sum_avx2(o, n, max);
#endif
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) sum += (o[c] = std::exp(o[c] - max));
  return sum;
}

constexpr int64_t kGrain = 1 << 15;  // elements per task for element-wise work
constexpr int64_t kRowBlock = 256;   // rows per partial sum in sums over rows (fixed: results must not depend on the thread count)

// Runs fn(begin, end) over [0, n) in chunks on the pool when n is large.
template <typename Fn>
void chunked(int64_t n, int64_t grain, Fn fn) {
  const int threads = thread_count();
  if (n <= grain || threads == 1) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t tasks = std::min<int64_t>((n + grain - 1) / grain, threads * 4);
  const int64_t per = (n + tasks - 1) / tasks;
  parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t) {
    const int64_t begin = static_cast<int64_t>(t) * per;
    const int64_t end = std::min<int64_t>(n, begin + per);
    if (begin < end) fn(begin, end);
  });
}

template <Binary op>
inline float apply(float x, float y) {
  switch (op) {
    case Binary::Add: return x + y;
    case Binary::Sub: return x - y;
    case Binary::Mul: return x * y;
    case Binary::Div: return x / y;
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

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
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
    case Binary::Mul: return binary_impl<Binary::Mul>(a, aShape, b, bShape, out, outShape);
    case Binary::Div: return binary_impl<Binary::Div>(a, aShape, b, bShape, out, outShape);
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

void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * cols;
      float* o = out + r * cols;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < cols; ++c) max = std::max(max, in[c]);
      if (o != in) std::memcpy(o, in, cols * sizeof(float));
      const float sum = exp_shift_sum(o, cols, max);
      const float inv = 1.0f / sum;
      for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
    }
  });
}

void reduce_rows(int kind, const float* x, float* out, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * cols;
      if (kind == 2 || kind == 3) {
        float v = in[0];
        for (int64_t c = 1; c < cols; ++c) {
          if (std::isnan(in[c])) { v = in[c]; break; }
          v = kind == 2 ? std::max(v, in[c]) : std::min(v, in[c]);
        }
        out[r] = v;
      } else {
        // Pairwise-friendly: eight partial sums, as a vectorised loop would keep.
        float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8)
          for (int k = 0; k < 8; ++k) part[k] += in[c + k];
        float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        for (; c < cols; ++c) sum += in[c];
        out[r] = kind == 1 ? sum / static_cast<float>(cols) : sum;
      }
    }
  });
}

void reduce_cols(int kind, const float* x, float* out, int64_t rows, int64_t cols) {
  if ((kind == 0 || kind == 1) && rows >= 2 * kRowBlock) {
    // Sums (bias gradients: [B·T, N] → [N]): each task streams a contiguous block of kRowBlock rows into
    // its own partial sums, then the partials are added in block order. The blocks depend on the shape
    // only, so the result is the same for any number of threads.
    const int64_t per = kRowBlock;
    const int64_t tasks = (rows + per - 1) / per;
    std::vector<float> partial(static_cast<size_t>(tasks * cols), 0.0f);
    parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t) {
      float* acc = partial.data() + t * cols;
      const int64_t begin = static_cast<int64_t>(t) * per, end = std::min<int64_t>(rows, begin + per);
      for (int64_t r = begin; r < end; ++r) {
        const float* in = x + r * cols;
        for (int64_t c = 0; c < cols; ++c) acc[c] += in[c];
      }
    });
    for (int64_t c = 0; c < cols; ++c) out[c] = 0.0f;
    for (int64_t t = 0; t < tasks; ++t)
      for (int64_t c = 0; c < cols; ++c) out[c] += partial[t * cols + c];
    if (kind == 1)
      for (int64_t c = 0; c < cols; ++c) out[c] /= static_cast<float>(rows);
    return;
  }
  // Parallel over column ranges; each task streams the rows once.
  chunked(cols, 64, [&](int64_t s, int64_t e) {
    if (kind == 2 || kind == 3) {
      for (int64_t c = s; c < e; ++c) out[c] = x[c];
      for (int64_t r = 1; r < rows; ++r) {
        const float* in = x + r * cols;
        for (int64_t c = s; c < e; ++c) {
          const float v = in[c];
          if (std::isnan(v) || std::isnan(out[c])) out[c] = std::numeric_limits<float>::quiet_NaN();
          else out[c] = kind == 2 ? std::max(out[c], v) : std::min(out[c], v);
        }
      }
      return;
    }
    for (int64_t c = s; c < e; ++c) out[c] = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = x + r * cols;
      for (int64_t c = s; c < e; ++c) out[c] += in[c];
    }
    if (kind == 1)
      for (int64_t c = s; c < e; ++c) out[c] /= static_cast<float>(rows);
  });
}

void transpose(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, float* out) {
  const size_t rank = shape.size();
  std::vector<int64_t> inStrides(rank, 1);
  for (size_t i = rank - 1; i-- > 0;) inStrides[i] = inStrides[i + 1] * shape[i + 1];
  std::vector<int64_t> outShape(rank), strideOfOutAxis(rank);
  for (size_t i = 0; i < rank; ++i) {
    outShape[i] = shape[perm[i]];
    strideOfOutAxis[i] = inStrides[perm[i]];
  }
  const int64_t n = product(shape);
  const int64_t inner = rank ? outShape[rank - 1] : 1;
  const int64_t innerStride = rank ? strideOfOutAxis[rank - 1] : 1;
  const int64_t rows = inner ? n / inner : 0;
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      int64_t rest = r, off = 0;
      for (size_t axis = rank - 1; axis-- > 0;) {
        off += (rest % outShape[axis]) * strideOfOutAxis[axis];
        rest /= outShape[axis];
      }
      float* o = out + r * inner;
      if (innerStride == 1) {
        std::memcpy(o, x + off, inner * sizeof(float));
      } else {
        for (int64_t c = 0; c < inner; ++c) o[c] = x[off + c * innerStride];
      }
    }
  });
}

void gather(const float* x, int64_t outer, int64_t axisSize, int64_t inner, const int32_t* indices, int64_t count, float* out) {
  chunked(outer * count, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      const int64_t o = t / count, i = t % count;
      const int64_t index = indices[i];
      float* dst = out + t * inner;
      if (index < 0 || index >= axisSize) {
        std::fill(dst, dst + inner, 0.0f);  // as tfjs's cpu backend: out-of-range gathers give zeros
      } else {
        std::memcpy(dst, x + (o * axisSize + index) * inner, inner * sizeof(float));
      }
    }
  });
}

void unsorted_segment_sum(const float* x, const int32_t* ids, int64_t count, int64_t inner, int64_t segments, float* out) {
  std::fill(out, out + segments * inner, 0.0f);
  // Parallel over the inner dimension: each task owns a column range, so no two tasks write one value.
  chunked(inner, std::max<int64_t>(16, kGrain / std::max<int64_t>(count, 1)), [&](int64_t s, int64_t e) {
    for (int64_t i = 0; i < count; ++i) {
      const int64_t segment = ids[i];
      if (segment < 0 || segment >= segments) continue;
      const float* src = x + i * inner;
      float* dst = out + segment * inner;
      for (int64_t c = s; c < e; ++c) dst[c] += src[c];
    }
  });
}

// Σ x[c] and Σ x[c]² over a row, in 16 independent lanes (the compiler keeps them in vector registers),
// added pairwise at the end.
inline float lane_total(const float* lanes) {
  float half[8];
  for (int k = 0; k < 8; ++k) half[k] = lanes[k] + lanes[k + 8];
  return ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7]));
}

inline float row_sum(const float* in, int64_t D) {
  float lanes[16] = {};
  int64_t c = 0;
  for (; c + 16 <= D; c += 16)
    for (int k = 0; k < 16; ++k) lanes[k] += in[c + k];
  float sum = lane_total(lanes);
  for (; c < D; ++c) sum += in[c];
  return sum;
}

inline float row_centered_squares(const float* in, int64_t D, float m) {
  float lanes[16] = {};
  int64_t c = 0;
  for (; c + 16 <= D; c += 16)
    for (int k = 0; k < 16; ++k) {
      const float d = in[c + k] - m;
      lanes[k] += d * d;
    }
  float sum = lane_total(lanes);
  for (; c < D; ++c) sum += (in[c] - m) * (in[c] - m);
  return sum;
}

void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t D, float eps, float* y, float* mean, float* rstd) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * D;
      const float m = row_sum(in, D) / static_cast<float>(D);
      const float inv = 1.0f / std::sqrt(row_centered_squares(in, D, m) / static_cast<float>(D) + eps);
      mean[r] = m;
      rstd[r] = inv;
      float* o = y + r * D;
      for (int64_t c = 0; c < D; ++c) o[c] = (in[c] - m) * inv * gamma[c] + beta[c];
    }
  });
}

void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd, int64_t rows, int64_t D, float* dx,
                         float* dgamma, float* dbeta) {
  // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · gamma, x̂ = (x − mean) · rstd.
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float m = mean[r], inv = rstd[r];
      float lanes_g[16] = {}, lanes_gx[16] = {};
      int64_t c = 0;
      for (; c + 16 <= D; c += 16)
        for (int k = 0; k < 16; ++k) {
          const float g = g_in[c + k] * gamma[c + k];
          lanes_g[k] += g;
          lanes_gx[k] += g * (in[c + k] - m) * inv;
        }
      float sum_g = lane_total(lanes_g), sum_gx = lane_total(lanes_gx);
      for (; c < D; ++c) {
        const float g = g_in[c] * gamma[c];
        sum_g += g;
        sum_gx += g * (in[c] - m) * inv;
      }
      const float mean_g = sum_g / static_cast<float>(D), mean_gx = sum_gx / static_cast<float>(D);
      float* o = dx + r * D;
      for (int64_t c = 0; c < D; ++c) {
        const float xhat = (in[c] - m) * inv;
        o[c] = inv * (g_in[c] * gamma[c] - mean_g - xhat * mean_gx);
      }
    }
  });
  // dgamma, dbeta: each task sums a block of kRowBlock rows into its own partials, added in block order
  // (the same blocks for any number of threads).
  const int64_t per = kRowBlock;
  const int64_t tasks = std::max<int64_t>(1, (rows + per - 1) / per);
  std::vector<float> partial(static_cast<size_t>(tasks * 2 * D), 0.0f);
  auto block = [&](std::size_t t) {
    float* pg = partial.data() + t * 2 * D;
    float* pb = pg + D;
    const int64_t begin = static_cast<int64_t>(t) * per, end = std::min<int64_t>(rows, begin + per);
    for (int64_t r = begin; r < end; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float m = mean[r], inv = rstd[r];
      for (int64_t c = 0; c < D; ++c) {
        pg[c] += g_in[c] * (in[c] - m) * inv;
        pb[c] += g_in[c];
      }
    }
  };
  if (tasks == 1) block(0);
  else parallel_for(static_cast<std::size_t>(tasks), block);
  for (int64_t c = 0; c < D; ++c) dgamma[c] = dbeta[c] = 0.0f;
  for (int64_t t = 0; t < tasks; ++t)
    for (int64_t c = 0; c < D; ++c) {
      dgamma[c] += partial[t * 2 * D + c];
      dbeta[c] += partial[t * 2 * D + D + c];
    }
}

namespace {
// One AdamW step over [s, e). Inlined into an AVX2 clone below, where the compiler vectorises the
// divisions and square roots 8 wide (the baseline build would do them one at a time: 4 ns a value).
inline void adamw_range(const float* __restrict p, const float* __restrict g, const float* __restrict m, const float* __restrict v, int64_t s, int64_t e,
                        float lr, float beta1, float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2,
                        float* __restrict p_out, float* __restrict m_out, float* __restrict v_out) {
  for (int64_t i = s; i < e; ++i) {
    const float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
    const float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
    m_out[i] = mi;
    v_out[i] = vi;
    p_out[i] = p[i] - lr * ((mi / bias_correction1) / (std::sqrt(vi / bias_correction2) + eps) + weight_decay * p[i]);
  }
}

#ifdef MLLM_X86
__attribute__((target("avx2,fma"))) void adamw_range_avx2(const float* p, const float* g, const float* m, const float* v, int64_t s, int64_t e, float lr,
                                                         float beta1, float beta2, float eps, float weight_decay, float bias_correction1,
                                                         float bias_correction2, float* p_out, float* m_out, float* v_out) {
  adamw_range(p, g, m, v, s, e, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, p_out, m_out, v_out);
}
#endif
}  // namespace

void adamw_update(const float* p, const float* g, const float* m, const float* v, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                  float bias_correction1, float bias_correction2, float* p_out, float* m_out, float* v_out) {
  chunked(n, kGrain, [&](int64_t s, int64_t e) {
#ifdef MLLM_X86
    if (has_avx2()) return adamw_range_avx2(p, g, m, v, s, e, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, p_out, m_out, v_out);
#endif
    adamw_range(p, g, m, v, s, e, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, p_out, m_out, v_out);
  });
}

void rms_norm_forward(const float* x, const float* weight, int64_t rows, int64_t D, float eps, float* y, float* rstd) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * D;
      double sq = 0.0;
      for (int64_t c = 0; c < D; ++c) sq += static_cast<double>(in[c]) * in[c];
      const float inv = 1.0f / std::sqrt(static_cast<float>(sq / D) + eps);
      rstd[r] = inv;
      float* o = y + r * D;
      for (int64_t c = 0; c < D; ++c) o[c] = in[c] * inv * weight[c];
    }
  });
}

void rms_norm_backward(const float* dy, const float* x, const float* weight, const float* rstd, int64_t rows, int64_t D, float* dx, float* dweight) {
  // dx = rstd · (g − x̂ · mean(g · x̂)), g = dy · weight, x̂ = x · rstd.
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float inv = rstd[r];
      double sum = 0.0;
      for (int64_t c = 0; c < D; ++c) sum += static_cast<double>(g_in[c] * weight[c]) * (in[c] * inv);
      const float mean_gx = static_cast<float>(sum / D);
      float* o = dx + r * D;
      for (int64_t c = 0; c < D; ++c) o[c] = inv * (g_in[c] * weight[c] - in[c] * inv * mean_gx);
    }
  });
  chunked(D, 64, [&](int64_t s, int64_t e) {
    for (int64_t c = s; c < e; ++c) dweight[c] = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float inv = rstd[r];
      for (int64_t c = s; c < e; ++c) dweight[c] += g_in[c] * in[c] * inv;
    }
  });
}

void scaled_masked_softmax(const float* x, const float* mask, int64_t mask_rows, float scale, float* y, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * cols;
      const float* m = mask ? mask + (r % mask_rows) * cols : nullptr;
      float* o = y + r * cols;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < cols; ++c) {
        o[c] = in[c] * scale + (m ? m[c] : 0.0f);
        max = std::max(max, o[c]);
      }
      const float sum = exp_shift_sum(o, cols, max);
      const float inv = 1.0f / sum;
      for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
    }
  });
}

void scaled_softmax_backward(const float* y, const float* dy, float scale, float* dx, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* yr = y + r * cols;
      const float* g = dy + r * cols;
      float dot = 0.0f;
      for (int64_t c = 0; c < cols; ++c) dot += g[c] * yr[c];
      float* o = dx + r * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] = scale * yr[c] * (g[c] - dot);
    }
  });
}

}  // namespace mllm
