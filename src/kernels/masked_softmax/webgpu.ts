import type { KernelArgs } from "../registry";
/** Scaled masked softmax on the `webgpu` backend: one row-wise WGSL program forward (a workgroup per row), one backward. */
import type * as tf from "@tensorflow/tfjs";
import { ROW_THREADS, runRowwise } from "../webgpu_programs";

type Args = KernelArgs;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** inputs x [..., Tq, Tk], mask [Tq, Tk] (optional); attrs scale → y = softmax(x·scale + mask) over the last axis. */
export function scaledMaskedSoftmaxWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, mask } = inputs;
  const cols = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / cols;
  const maskRows = mask ? size(mask.shape) / cols : 1;
  const value = mask ? "x[base + c] * uniforms.scale + mask[maskBase + c]" : "x[base + c] * uniforms.scale";
  const body = `
      let maskBase = (row % uniforms.maskRows) * cols;
      var localMax = -3.402823e+38;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { localMax = max(localMax, ${value}); }
      let rowMax = maxOf(localMax);
      var localSum = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { localSum += exp(${value} - rowMax); }
      let inverse = 1.0 / sum(localSum);
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { put(base + c, exp(${value} - rowMax) * inverse); }`;
  return runRowwise(backend, mask ? "masked_softmax" : "scaled_softmax", mask ? { x, mask } : { x }, x.shape, rows, cols, body, [
    { name: "scale", type: "f32", value: attrs.scale },
    { name: "maskRows", type: "i32", value: maskRows },
  ]);
}

/** inputs y, dy (same shape); attrs scale → dx = scale · y · (dy − Σ dy·y) per row. */
export function scaledSoftmaxGradWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { y, dy } = inputs;
  const cols = y.shape[y.shape.length - 1];
  const rows = size(y.shape) / cols;
  const body = `
      var localDot = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { localDot += dy[base + c] * y[base + c]; }
      let dot = sum(localDot);
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { put(base + c, uniforms.scale * y[base + c] * (dy[base + c] - dot)); }`;
  return runRowwise(backend, "softmax_grad", { y, dy }, y.shape, rows, cols, body, [
    { name: "scale", type: "f32", value: attrs.scale },
  ]);
}
