/**
 * The native kernels, as tfjs kernel configs for the `native` backend.
 *
 * Each reads its inputs' Float32Arrays from the backend, allocates the output
 * from the pool, and calls the addon; anything it does not handle goes to
 * the `cpu` kernel of the same name. Reference for each kernel's semantics:
 * tfjs-backend-cpu 4.22's kernel of the same name.
 */
import * as tf from "@tensorflow/tfjs";
import { opCode, type OpName } from "./op_codes";
import { floats, intValues, output, size, values, type NativeKernelFunc as KernelFunc } from "./tensor_io";
import type { NativeBackend } from "./backend";
import { storedValues } from "../tfjs_internals";

type TensorInfo = tf.TensorInfo;

const { util, backend_util } = tf;

/** Wraps a native kernel with the fallback to the cpu kernel of the same name. */
function withFallback(name: string, native: (args: Parameters<KernelFunc>[0]) => TensorInfo | TensorInfo[] | null): KernelFunc {
  const cpu = tf.getKernel(name, "cpu");
  if (!cpu) throw new Error(`native backend: tfjs has no cpu kernel "${name}"`);
  return (args) => native(args) ?? (cpu.kernelFunc(args as any) as TensorInfo);
}

// ---- matrix multiplication -------------------------------------------------

/** out = op(a) · op(b) with batch broadcasting; null when the cpu kernel must do it. */
function batchMatMul(backend: NativeBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo | null {
  if (!floats(a, b) || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const K2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== K2) return null; // the cpu kernel raises tfjs's own error message
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchOut = backend_util.assertAndGetBroadcastShape(batchA, batchB);
  const batch = size(batchOut);
  const out = backend.allocate(batch * M * N);
  const av = values(backend, a);
  const bv = values(backend, b);
  const sizeA = size(batchA);
  const sizeB = size(batchB);
  const simple = (n: number, shape: number[]) => n === 1 || (n === batch && shape.length === batchOut.length && shape.every((d, i) => d === batchOut[i]));
  if (simple(sizeA, batchA) && simple(sizeB, batchB)) {
    backend.addon.matmul(av, bv, out, batch, M, N, K, transposeA, transposeB, sizeA === 1 ? 0 : M * K, sizeB === 1 ? 0 : K * N, M * N);
  } else {
    // General broadcasting: one product per output batch index.
    const stridesOf = (shape: number[]) => {
      const padded = [...Array(batchOut.length - shape.length).fill(1), ...shape];
      const strides = new Array(padded.length).fill(0);
      let stride = 1;
      for (let i = padded.length - 1; i >= 0; i--) {
        strides[i] = padded[i] === 1 ? 0 : stride;
        stride *= padded[i];
      }
      return strides;
    };
    const sa = stridesOf(batchA);
    const sb = stridesOf(batchB);
    for (let index = 0; index < batch; index++) {
      let rest = index;
      let offsetA = 0;
      let offsetB = 0;
      for (let axis = batchOut.length - 1; axis >= 0; axis--) {
        const i = rest % batchOut[axis];
        rest = Math.floor(rest / batchOut[axis]);
        offsetA += i * sa[axis];
        offsetB += i * sb[axis];
      }
      backend.addon.matmul(
        av.subarray(offsetA * M * K, (offsetA + 1) * M * K),
        bv.subarray(offsetB * K * N, (offsetB + 1) * K * N),
        out.subarray(index * M * N, (index + 1) * M * N),
        1, M, N, K, transposeA, transposeB, 0, 0, 0,
      );
    }
  }
  return output(backend, [...batchOut, M, N], out);
}

const batchMatMulKernel = withFallback("BatchMatMul", ({ inputs, backend, attrs }) =>
  batchMatMul(backend, inputs.a, inputs.b, attrs.transposeA, attrs.transposeB),
);

const fusedMatMulKernel = withFallback("_FusedMatMul", ({ inputs, backend, attrs }) => {
  const { a, b, bias, preluActivationWeights } = inputs;
  const activation: string = attrs.activation ?? "linear";
  if (preluActivationWeights || !["linear", "relu", "sigmoid"].includes(activation) || !floats(bias)) return null;
  const product = batchMatMul(backend, a, b, attrs.transposeA, attrs.transposeB);
  if (!product) return null;
  let result = product;
  if (bias) {
    const shape = backend_util.assertAndGetBroadcastShape(product.shape, bias.shape);
    const out = backend.allocate(size(shape));
    backend.addon.binary(opCode("binary", "Add"), values(backend, product), product.shape, values(backend, bias), bias.shape, out, shape);
    backend.disposeIntermediateTensorInfo(product);
    result = output(backend, shape, out);
  }
  if (activation !== "linear") {
    const out = backend.allocate(size(result.shape));
    backend.addon.unary(opCode("unary", activation === "relu" ? "Relu" : "Sigmoid"), values(backend, result), out);
    backend.disposeIntermediateTensorInfo(result);
    result = output(backend, result.shape, out);
  }
  return result;
});

// ---- element-wise ----------------------------------------------------------

function binaryKernel(name: OpName<"binary">): KernelFunc {
  const code = opCode("binary", name);
  return withFallback(name, ({ inputs, backend }) => {
    const { a, b } = inputs;
    if (!floats(a, b)) return null;
    const shape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = backend.allocate(size(shape));
    backend.addon.binary(code, values(backend, a), a.shape, values(backend, b), b.shape, out, shape);
    return output(backend, shape, out);
  });
}

function unaryKernel(name: OpName<"unary">): KernelFunc {
  const code = opCode("unary", name);
  return withFallback(name, ({ inputs, backend }) => {
    const { x } = inputs;
    if (!floats(x)) return null;
    const out = backend.allocate(size(x.shape));
    backend.addon.unary(code, values(backend, x), out);
    return output(backend, x.shape, out);
  });
}

const softmaxKernel = withFallback("Softmax", ({ inputs, backend, attrs }) => {
  const { logits } = inputs;
  const rank = logits.shape.length;
  if (!floats(logits) || rank === 0 || (attrs.dim !== -1 && attrs.dim !== rank - 1)) return null;
  const cols = logits.shape[rank - 1];
  const out = backend.allocate(size(logits.shape));
  backend.addon.softmax(values(backend, logits), out, size(logits.shape) / Math.max(cols, 1), cols);
  return output(backend, logits.shape, out);
});

// ---- reductions ------------------------------------------------------------

function transposeValues(backend: NativeBackend, x: TensorInfo, perm: number[]): Float32Array {
  const out = backend.allocate(size(x.shape));
  backend.addon.transpose(values(backend, x), x.shape, perm, out);
  return out;
}

/** tfjs's Sum, Mean, Max and Min kernels: the reduce kind of the same name. */
function reduceKernel(name: "Sum" | "Mean" | "Max" | "Min"): KernelFunc {
  const kind = opCode("reduce", name);
  return withFallback(name, ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    if (!floats(x) || x.shape.length === 0) return null;
    const rank = x.shape.length;
    const axes = util.parseAxisParam(attrs.axis ?? attrs.reductionIndices, x.shape).sort((p, q) => p - q);
    if (axes.length === 0) return null;
    const cols = size(axes.map((axis) => x.shape[axis]));
    if (cols === 0) return null;
    const keptShape = x.shape.filter((_, axis) => !axes.includes(axis));
    const rows = size(keptShape);
    const innermost = axes.every((axis, i) => axis === rank - axes.length + i);
    const outermost = axes.every((axis, i) => axis === i);
    const shape = attrs.keepDims ? x.shape.map((d, axis) => (axes.includes(axis) ? 1 : d)) : keptShape;
    if (outermost && !innermost) {
      // Leading axes (a bias gradient): reduce columns in place, no transpose.
      const out = backend.allocate(rows);
      backend.addon.reduceColumns(kind, values(backend, x), out, cols, rows);
      return output(backend, shape, out);
    }
    let input = values(backend, x);
    let temporary: Float32Array | undefined;
    if (!innermost) {
      // Move the reduced axes last: [kept..., reduced...].
      const perm = [...x.shape.map((_, axis) => axis).filter((axis) => !axes.includes(axis)), ...axes];
      temporary = input = transposeValues(backend, x, perm);
    }
    const out = backend.allocate(rows);
    backend.addon.reduce(kind, input, out, rows, cols);
    if (temporary) backend.pool.release(temporary);
    return output(backend, shape, out);
  });
}

// ---- data movement ---------------------------------------------------------

const transposeKernel = withFallback("Transpose", ({ inputs, backend, attrs }) => {
  const { x } = inputs;
  if (!floats(x)) return null;
  const perm: number[] = attrs.perm;
  return output(backend, perm.map((axis) => x.shape[axis]), transposeValues(backend, x, perm));
});

const gatherKernel = withFallback("GatherV2", ({ inputs, backend, attrs }) => {
  const { x, indices } = inputs;
  if (!floats(x) || indices.dtype !== "int32" || (attrs.batchDims ?? 0) !== 0) return null;
  const axis = util.parseAxisParam(attrs.axis, x.shape)[0];
  const ids = intValues(backend, indices);
  const axisSize = x.shape[axis];
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= axisSize) throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${axisSize - 1}]`);
  }
  const outer = size(x.shape.slice(0, axis));
  const inner = size(x.shape.slice(axis + 1));
  const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const out = backend.allocate(size(shape));
  backend.addon.gather(values(backend, x), outer, axisSize, inner, ids, out);
  return output(backend, shape, out);
});

const segmentSumKernel = withFallback("UnsortedSegmentSum", ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs;
  if (!floats(x) || segmentIds.dtype !== "int32" || segmentIds.shape.length !== 1 || x.shape[0] !== segmentIds.shape[0]) return null;
  const segments: number = attrs.numSegments;
  const inner = size(x.shape.slice(1));
  const shape = [segments, ...x.shape.slice(1)];
  const out = backend.allocate(size(shape));
  backend.addon.segmentSum(values(backend, x), intValues(backend, segmentIds), inner, segments, out);
  return output(backend, shape, out);
});

/**
 * Copies the box [begin, begin + size) of x into a new pooled array, one
 * contiguous run (the box's innermost extent) at a time with TypedArray.set
 * (a memcpy). Unlike the cpu kernel it never returns a view of x's memory.
 */
function sliceValues(backend: NativeBackend, x: TensorInfo, begin: number[], sizes: number[]): Float32Array {
  const source = values(backend, x);
  const rank = x.shape.length;
  const out = backend.allocate(size(sizes));
  if (out.length === 0) return out;
  const strides = util.computeStrides(x.shape);
  const inner = rank === 0 ? 1 : sizes[rank - 1];
  const rows = out.length / inner;
  const index = new Array(Math.max(rank - 1, 0)).fill(0);
  for (let row = 0; row < rows; row++) {
    let offset = rank === 0 ? 0 : begin[rank - 1];
    for (let axis = 0; axis < rank - 1; axis++) offset += (begin[axis] + index[axis]) * strides[axis];
    out.set(source.subarray(offset, offset + inner), row * inner);
    for (let axis = rank - 2; axis >= 0; axis--) {
      if (++index[axis] < sizes[axis]) break;
      index[axis] = 0;
    }
  }
  return out;
}

const sliceKernel = withFallback("Slice", ({ inputs, backend, attrs }) => {
  const { x } = inputs;
  if (!floats(x)) return null;
  const [begin, sizes] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
  tf.slice_util.assertParamsValid(x as tf.Tensor, begin, sizes);
  return output(backend, sizes, sliceValues(backend, x, begin, sizes));
});

const splitKernel = withFallback("SplitV", ({ inputs, backend, attrs }) => {
  const { x } = inputs;
  if (!floats(x)) return null;
  const axis = util.parseAxisParam(attrs.axis, x.shape)[0];
  const splits = backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
  const begin = new Array(x.shape.length).fill(0);
  return splits.map((extent) => {
    const sizes = [...x.shape];
    sizes[axis] = extent;
    const piece = output(backend, sizes, sliceValues(backend, x, begin, sizes));
    begin[axis] += extent;
    return piece;
  });
});

const concatKernel = withFallback("Concat", ({ inputs, backend, attrs }) => {
  const tensors = Object.values(inputs) as TensorInfo[];
  if (tensors.length === 0 || !floats(...tensors)) return null;
  const axis = util.parseAxisParam(attrs.axis, tensors[0].shape)[0];
  const shape = backend_util.computeOutShape(tensors.map((t) => t.shape), axis);
  const out = backend.allocate(size(shape));
  const outer = size(shape.slice(0, axis));
  const blocks = tensors.map((t) => size(t.shape.slice(axis))); // elements of one input per outer index
  const rowSize = size(shape.slice(axis));
  let column = 0;
  for (const [k, t] of tensors.entries()) {
    const source = values(backend, t);
    const block = blocks[k];
    for (let o = 0; o < outer; o++) out.set(source.subarray(o * block, (o + 1) * block), o * rowSize + column);
    column += block;
  }
  return output(backend, shape, out);
});

/**
 * Constant padding (tfjs's PadV2: `x.pad(paddings, constantValue)`, and the gradient of Slice): the output filled with
 * the constant, then each innermost row of x copied into place. The cpu kernel computes every output element's index
 * in JavaScript: 4–5× slower on LLaVA's patch neighbourhoods and the logits' slice gradient (`npm run bench --
 * movement`). Other dtypes go to the cpu kernel.
 */
const padKernel = withFallback("PadV2", ({ inputs, backend, attrs }) => {
  const { x } = inputs;
  const { paddings, constantValue } = attrs as unknown as { paddings: [number, number][]; constantValue: number };
  const rank = x.shape.length;
  if (!floats(x) || rank === 0 || paddings.length !== rank) return null;
  const shape = x.shape.map((extent, axis) => paddings[axis][0] + extent + paddings[axis][1]);
  const out = backend.allocate(size(shape));
  out.fill(constantValue);
  const source = values(backend, x);
  const row = x.shape[rank - 1];
  if (row === 0) return output(backend, shape, out);
  const strides = util.computeStrides(shape); // of the output, in elements (rank − 1 of them)
  const rows = size(x.shape) / row;
  const index = new Array<number>(rank - 1).fill(0); // x's index of the current row, innermost axis last
  for (let r = 0; r < rows; r++) {
    let at = paddings[rank - 1][0];
    for (let axis = 0; axis < rank - 1; axis++) at += (index[axis] + paddings[axis][0]) * strides[axis];
    out.set(source.subarray(r * row, (r + 1) * row), at);
    for (let axis = rank - 2; axis >= 0; axis--) {
      if (++index[axis] < x.shape[axis]) break;
      index[axis] = 0;
    }
  }
  return output(backend, shape, out);
});

/**
 * Tiling (tfjs's Tile: `x.tile(reps)`, `repeat_kv` of grouped-query attention, the image-token merge's mask): each
 * innermost row of the output is its source row of x repeated reps[last] times. The cpu kernel computes every output
 * element's index in JavaScript: about 3× slower on these shapes (`npm run bench -- movement`). float32, int32 and bool
 * are copied here (float32 into the buffer pool, the others into a fresh array of their own type); strings and complex
 * numbers go to the cpu kernel.
 */
const tileKernel = withFallback("Tile", ({ inputs, backend, attrs }) => {
  const { x } = inputs;
  const reps = attrs.reps as number[];
  const rank = x.shape.length;
  if (!["float32", "int32", "bool"].includes(x.dtype) || rank === 0 || reps.length !== rank) return null;
  const shape = x.shape.map((extent, axis) => extent * reps[axis]);
  const total = size(shape);
  const source = (x.dtype === "float32" ? values(backend, x) : storedValues(backend, x.dataId)) as Float32Array | Int32Array | Uint8Array;
  const out =
    x.dtype === "float32" ? backend.allocate(total) : new (source.constructor as Int32ArrayConstructor | Uint8ArrayConstructor)(total);
  const row = x.shape[rank - 1];
  const outRow = shape[rank - 1];
  if (total > 0) {
    const index = new Array<number>(rank - 1).fill(0); // the output's index of the current row, innermost axis last
    for (let r = 0; r < total / outRow; r++) {
      let from = 0; // x's row at this output row: each index modulo x's extent
      for (let axis = 0; axis < rank - 1; axis++) from = from * x.shape[axis] + (index[axis] % x.shape[axis]);
      const at = r * outRow;
      if (row === 1) out.fill(source[from], at, at + outRow);
      else {
        const piece = source.subarray(from * row, (from + 1) * row);
        for (let k = 0; k < reps[rank - 1]; k++) out.set(piece, at + k * row);
      }
      for (let axis = rank - 2; axis >= 0; axis--) {
        if (++index[axis] < shape[axis]) break;
        index[axis] = 0;
      }
    }
  }
  return backend.makeTensorInfo(shape, x.dtype, out);
});

/** One-hot rows as float32 (class targets for a loss), from the buffer pool; other dtypes go to the cpu kernel. */
const oneHotKernel = withFallback("OneHot", ({ inputs, backend, attrs }) => {
  const { indices } = inputs as { indices: TensorInfo };
  const { depth, onValue, offValue, dtype } = attrs as unknown as { depth: number; onValue: number; offValue: number; dtype: string };
  if (dtype !== "float32" || indices.dtype !== "int32") return null;
  const native = backend as NativeBackend;
  const ids = intValues(native, indices);
  const n = size(indices.shape);
  const out = native.allocate(n * depth);
  out.fill(offValue);
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    if (id >= 0 && id < depth) out[i * depth + id] = onValue; // out-of-range indices give a row of offValue, as in tfjs
  }
  return output(native, [...indices.shape, depth], out);
});

/** Kernel name → native implementation. */
export function nativeKernels(): Record<string, KernelFunc> {
  return {
    OneHot: oneHotKernel,
    BatchMatMul: batchMatMulKernel,
    _FusedMatMul: fusedMatMulKernel,
    Add: binaryKernel("Add"),
    Sub: binaryKernel("Sub"),
    Multiply: binaryKernel("Multiply"),
    RealDiv: binaryKernel("RealDiv"),
    Maximum: binaryKernel("Maximum"),
    Minimum: binaryKernel("Minimum"),
    SquaredDifference: binaryKernel("SquaredDifference"),
    Pow: binaryKernel("Pow"),
    Exp: unaryKernel("Exp"),
    Log: unaryKernel("Log"),
    Sqrt: unaryKernel("Sqrt"),
    Rsqrt: unaryKernel("Rsqrt"),
    Tanh: unaryKernel("Tanh"),
    Sigmoid: unaryKernel("Sigmoid"),
    Relu: unaryKernel("Relu"),
    Neg: unaryKernel("Neg"),
    Abs: unaryKernel("Abs"),
    Square: unaryKernel("Square"),
    Reciprocal: unaryKernel("Reciprocal"),
    Softmax: softmaxKernel,
    Sum: reduceKernel("Sum"),
    Mean: reduceKernel("Mean"),
    Max: reduceKernel("Max"),
    Min: reduceKernel("Min"),
    Transpose: transposeKernel,
    GatherV2: gatherKernel,
    UnsortedSegmentSum: segmentSumKernel,
    Slice: sliceKernel,
    SplitV: splitKernel,
    Concat: concatKernel,
    PadV2: padKernel,
    Tile: tileKernel,
  };
}
