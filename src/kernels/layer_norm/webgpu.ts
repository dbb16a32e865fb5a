/**
 * LayerNorm on the `webgpu` backend: row-wise WGSL programs (a workgroup per row, two-pass statistics
 * as native/norms.cc computes them). Forward: y, mean and rstd (a program writes one output; each
 * recomputes the row's statistics, cheap at D ≤ a few thousand). Backward: dx row-wise, dgamma and
 * dbeta column-wise.
 */
import type * as tf from "@tensorflow/tfjs";
import { ROW_THREADS, runColumnwise, runRowwise } from "../webgpu_programs";

type Args = { inputs: Record<string, tf.TensorInfo>; backend: object; attrs: Record<string, any> };

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

const STATISTICS = `
      var partialSum = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { partialSum += x[base + c]; }
      let mean = sum(partialSum) / f32(cols);
      var partialSquares = 0.0;
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { let d = x[base + c] - mean; partialSquares += d * d; }
      let rstd = 1.0 / sqrt(sum(partialSquares) / f32(cols) + uniforms.eps);`;

/** inputs x [..., D], gamma [D], beta [D]; attrs eps → y [..., D], mean [rows], rstd [rows]. */
export function layerNormWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const eps = [{ name: "eps", type: "f32" as const, value: attrs.eps }];
  const y = runRowwise(backend, "layer_norm", { x, gamma, beta }, x.shape, rows, D, `${STATISTICS}
      for (var c = tid; c < cols; c += ${ROW_THREADS}) { put(base + c, (x[base + c] - mean) * rstd * gamma[c] + beta[c]); }`, eps);
  const mean = runRowwise(backend, "layer_norm_mean", { x }, [rows], rows, D, `${STATISTICS}
      if (tid == 0) { put(row, mean); }`, eps);
  const rstd = runRowwise(backend, "layer_norm_rstd", { x }, [rows], rows, D, `${STATISTICS}
      if (tid == 0) { put(row, rstd); }`, eps);
  return [y, mean, rstd];
}

/** inputs dy, x [..., D], gamma [D], mean, rstd [rows] → dx [..., D], dgamma [D], dbeta [D]. */
export function layerNormGradWebGpu({ inputs, backend }: Args): tf.TensorInfo[] {
  const { dy, x, gamma, mean, rstd } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · gamma, x̂ = (x − mean) · rstd.
  const dx = runRowwise(backend, "layer_norm_dx", { dy, x, gamma, mean, rstd }, x.shape, rows, D, `
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
      }`);
  const dgamma = runColumnwise(backend, "layer_norm_dgamma", { dy, x, mean, rstd }, rows, D, `
        var value = 0.0;
        for (var r = 0; r < rows; r++) { value += dy[r * cols + col] * (x[r * cols + col] - mean[r]) * rstd[r]; }`);
  const dbeta = runColumnwise(backend, "layer_norm_dbeta", { dy }, rows, D, `
        var value = 0.0;
        for (var r = 0; r < rows; r++) { value += dy[r * cols + col]; }`);
  return [dx, dgamma, dbeta];
}
