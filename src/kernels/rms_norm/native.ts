/** RMSNorm on the `native` backend: native/norms.cc (`rms_norm_forward`, `rms_norm_backward`). */
import { output, size, values, type NativeKernelFunc } from "../../engine/native/tensor_io";

/** inputs x [..., D], weight [D]; attrs eps → y [..., D], rstd [rows] (rows = size / D). */
export const rmsNormNative: NativeKernelFunc = ({ inputs, backend, attrs }) => {
  const { x, weight } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const y = backend.allocate(size(x.shape));
  const rstd = new Float32Array(rows);
  backend.addon.rmsNorm(values(backend, x), values(backend, weight), rows, D, attrs.eps, y, rstd);
  return [output(backend, x.shape, y), output(backend, [rows], rstd)];
};

/** inputs dy, x [..., D], weight [D], rstd [rows] → dx [..., D], dweight [D]. */
export const rmsNormGradNative: NativeKernelFunc = ({ inputs, backend }) => {
  const { dy, x, weight, rstd } = inputs;
  const D = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / D;
  const dx = backend.allocate(size(x.shape));
  const dweight = new Float32Array(D);
  backend.addon.rmsNormGrad(
    values(backend, dy),
    values(backend, x),
    values(backend, weight),
    values(backend, rstd),
    rows,
    D,
    dx,
    dweight,
  );
  return [output(backend, x.shape, dx), output(backend, [D], dweight)];
};
