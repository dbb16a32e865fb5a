import type { KernelArgs } from "../registry";
/**
 * RMSNorm on the `webgpu` backend: row-wise WGSL programs (a workgroup per row). Forward: y and rstd
 * (a program writes one output; each recomputes the row's mean square). Backward: dx row-wise,
 * dweight column-wise.
 */
import type * as tf from "@tensorflow/tfjs";
import { ROW_THREADS, runColumnwise, runRowwise } from "../webgpu_programs";

type Args = KernelArgs;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

const RSTD = `
      var partialSquares = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { partialSquares += x[base + c] * x[base + c]; }
      let rstd = 1.0 / sqrt(sum(partialSquares) / f32(cols) + uniforms.eps);`;

/** inputs x [..., D], weight [D]; attrs eps → y [..., D], rstd [rows]. */
export function rmsNormWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const { x, weight } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const eps = [{ name: "eps", type: "f32" as const, value: attrs.eps }];
  const y = runRowwise(
    backend,
    "rms_norm",
    { x, weight },
    x.shape,
    rows,
    D,
    `${RSTD}
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { put(base + c, x[base + c] * rstd * weight[c]); }`,
    eps,
  );
  const rstd = runRowwise(
    backend,
    "rms_norm_rstd",
    { x },
    [rows],
    rows,
    D,
    `${RSTD}
      if (tid == 0) { put(row, rstd); }`,
    eps,
  );
  return [y, rstd];
}

/** inputs dy, x [..., D], weight [D], rstd [rows] → dx [..., D], dweight [D]. */
export function rmsNormGradWebGpu({ inputs, backend }: Args): tf.TensorInfo[] {
  const { dy, x, weight, rstd } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  // dx = rstd · (g − x̂ · mean(g · x̂)), g = dy · weight, x̂ = x · rstd.
  const dx = runRowwise(
    backend,
    "rms_norm_dx",
    { dy, x, weight, rstd },
    x.shape,
    rows,
    D,
    `
      let inv = rstd[row];
      var partialGx = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { partialGx += dy[base + c] * weight[c] * x[base + c] * inv; }
      let meanGx = sum(partialGx) / f32(cols);
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { put(base + c, inv * (dy[base + c] * weight[c] - x[base + c] * inv * meanGx)); }`,
  );
  const dweight = runColumnwise(
    backend,
    "rms_norm_dweight",
    { dy, x, rstd },
    rows,
    D,
    `
        var value = 0.0;
        for (var r = 0; r < rows; r++) { value += dy[r * cols + col] * x[r * cols + col] * rstd[r]; }`,
  );
  return [dx, dweight];
}
