import type { KernelArgs } from "../registry";
/**
 * LayerNorm on the `webgpu` backend, in WGSL (two-pass statistics, as native/norms.cc computes them).
 * Forward: one dispatch, a workgroup per row, writing y, mean and rstd (a shader with three outputs,
 * run by `runWebGpuMultiOutput`). Backward: dx row-wise (a tfjs program), dgamma and dbeta in one
 * column-wise dispatch.
 */
import type * as tf from "@tensorflow/tfjs";
import { runWebGpuMultiOutput } from "../../engine/tfjs_internals";
import { ROW_THREADS, runRowwise } from "../webgpu_programs";

type Args = KernelArgs;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The most workgroups in one dispatch dimension (WebGPU's default limit). */
const MAX_WORKGROUPS = 65535;

/** Workgroups for `count` groups of work: [x, y, 1] with x ≤ 65535. */
function workgroups(count: number): [number, number, number] {
  const x = Math.max(1, Math.min(count, MAX_WORKGROUPS));
  return [x, Math.max(1, Math.ceil(count / x)), 1];
}

// A workgroup per row; `total` tree-reduces `partial` (called by every thread, in uniform control flow).
const FORWARD = `
struct Uniforms { rows : i32, cols : i32, groupsX : i32, eps : f32 };
@group(0) @binding(0) var<storage, read_write> y : array<f32>;
@group(0) @binding(1) var<storage, read_write> meanOut : array<f32>;
@group(0) @binding(2) var<storage, read_write> rstdOut : array<f32>;
@group(0) @binding(3) var<storage, read> x : array<f32>;
@group(0) @binding(4) var<storage, read> gamma : array<f32>;
@group(0) @binding(5) var<storage, read> beta : array<f32>;
@group(0) @binding(6) var<uniform> u : Uniforms;
var<workgroup> partial : array<f32, ${ROW_THREADS}>;

fn total(tid : u32) -> f32 {
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
    workgroupBarrier();
  }
  let result = partial[0];
  workgroupBarrier();
  return result;
}

@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) group : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let row = i32(group.y) * u.groupsX + i32(group.x);
  let inRange = row < u.rows;
  let cols = u.cols;
  let base = select(0, row, inRange) * cols; // a spare workgroup reads row 0 and writes nothing
  var partialSum = 0.0;
  for (var c = i32(tid); c < cols; c += ${ROW_THREADS}) { partialSum += x[base + c]; }
  partial[tid] = partialSum;
  let mean = total(tid) / f32(cols);
  var partialSquares = 0.0;
  for (var c = i32(tid); c < cols; c += ${ROW_THREADS}) { let d = x[base + c] - mean; partialSquares += d * d; }
  partial[tid] = partialSquares;
  let rstd = 1.0 / sqrt(total(tid) / f32(cols) + u.eps);
  if (inRange) {
    for (var c = i32(tid); c < cols; c += ${ROW_THREADS}) { y[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c]; }
    if (tid == 0u) {
      meanOut[row] = mean;
      rstdOut[row] = rstd;
    }
  }
}`;

// An invocation per column, summing over the rows.
const WEIGHT_GRADIENTS = `
struct Uniforms { rows : i32, cols : i32 };
@group(0) @binding(0) var<storage, read_write> dgamma : array<f32>;
@group(0) @binding(1) var<storage, read_write> dbeta : array<f32>;
@group(0) @binding(2) var<storage, read> dy : array<f32>;
@group(0) @binding(3) var<storage, read> x : array<f32>;
@group(0) @binding(4) var<storage, read> mean : array<f32>;
@group(0) @binding(5) var<storage, read> rstd : array<f32>;
@group(0) @binding(6) var<uniform> u : Uniforms;

@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(global_invocation_id) id : vec3<u32>) {
  let col = i32(id.x);
  if (col >= u.cols) { return; }
  var sumGamma = 0.0;
  var sumBeta = 0.0;
  for (var r = 0; r < u.rows; r++) {
    let g = dy[r * u.cols + col];
    sumGamma += g * (x[r * u.cols + col] - mean[r]) * rstd[r];
    sumBeta += g;
  }
  dgamma[col] = sumGamma;
  dbeta[col] = sumBeta;
}`;

/** inputs x [..., D], gamma [D], beta [D]; attrs eps → y [..., D], mean [rows], rstd [rows], in one dispatch. */
export function layerNormWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const grid = workgroups(rows);
  const uniforms = [
    { type: "int32" as const, data: [rows] },
    { type: "int32" as const, data: [D] },
    { type: "int32" as const, data: [grid[0]] },
    { type: "float32" as const, data: [attrs.eps] },
  ];
  return runWebGpuMultiOutput(backend, "layer_norm", FORWARD, grid, [x, gamma, beta], [x.shape, [rows], [rows]], uniforms);
}

/** inputs dy, x [..., D], gamma [D], mean, rstd [rows] → dx [..., D], dgamma [D], dbeta [D]. */
export function layerNormGradWebGpu({ inputs, backend }: Args): tf.TensorInfo[] {
  const { dy, x, gamma, mean, rstd } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · gamma, x̂ = (x − mean) · rstd.
  const dx = runRowwise(
    backend,
    "layer_norm_dx",
    { dy, x, gamma, mean, rstd },
    x.shape,
    rows,
    D,
    `
      let m = mean[row];
      let inv = rstd[row];
      var partialG = 0.0;
      var partialGx = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) {
        let g = dy[base + c] * gamma[c];
        partialG += g;
        partialGx += g * (x[base + c] - m) * inv;
      }
      let meanG = sum(partialG) / f32(cols);
      let meanGx = sum(partialGx) / f32(cols);
      for (var c = tid; c < cols; c += ${ROW_THREADS}) {
        let xhat = (x[base + c] - m) * inv;
        put(base + c, inv * (dy[base + c] * gamma[c] - meanG - xhat * meanGx));
      }`,
  );
  const [dgamma, dbeta] = runWebGpuMultiOutput(
    backend,
    "layer_norm_weight_grads",
    WEIGHT_GRADIENTS,
    [Math.ceil(D / ROW_THREADS), 1, 1],
    [dy, x, mean, rstd],
    [[D], [D]],
    [
      { type: "int32", data: [rows] },
      { type: "int32", data: [D] },
    ],
  );
  return [dx, dgamma, dbeta];
}
