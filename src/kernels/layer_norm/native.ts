/** LayerNorm on the `native` backend: native/norms.cc (`layer_norm_forward`, `layer_norm_backward`). */
import { output, size, values, type NativeKernelFunc } from "../../engine/native/tensor_io";

/** inputs x [..., D], gamma [D], beta [D]; attrs eps → y [..., D], mean [rows], rstd [rows] (rows = size / D). */
export const layerNormNative: NativeKernelFunc = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const y = backend.allocate(size(x.shape));
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  backend.addon.layerNorm(values(backend, x), values(backend, gamma), values(backend, beta), rows, D, attrs.eps, y, mean, rstd);
  return [output(backend, x.shape, y), output(backend, [rows], mean), output(backend, [rows], rstd)];
};

/** inputs dy, x [..., D], gamma [D], mean, rstd [rows] → dx [..., D], dgamma [D], dbeta [D]. */
export const layerNormGradNative: NativeKernelFunc = ({ inputs, backend }) => {
  const { dy, x, gamma, mean, rstd } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const dx = backend.allocate(size(x.shape));
  const dgamma = new Float32Array(D);
  const dbeta = new Float32Array(D);
  backend.addon.layerNormGrad(
    values(backend, dy),
    values(backend, x),
    values(backend, gamma),
    values(backend, mean),
    values(backend, rstd),
    rows,
    D,
    dx,
    dgamma,
    dbeta,
  );
  return [output(backend, x.shape, dx), output(backend, [D], dgamma), output(backend, [D], dbeta)];
};
