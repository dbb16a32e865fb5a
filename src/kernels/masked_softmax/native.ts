/** Scaled masked softmax on the `native` backend: native/softmax.cc (`scaled_masked_softmax`, `scaled_softmax_backward`). */
import { output, size, values, type NativeKernelFunc } from "../../engine/native/tensor_io";

/** inputs x [..., Tq, Tk], mask [Tq, Tk] (optional); attrs scale → y, same shape as x. */
export const scaledMaskedSoftmaxNative: NativeKernelFunc = ({ inputs, backend, attrs }) => {
  const { x, mask } = inputs;
  const cols = x.shape[x.shape.length - 1];
  const rows = size(x.shape) / cols;
  const y = backend.allocate(size(x.shape));
  const maskRows = mask ? size(mask.shape) / cols : 1;
  backend.addon.maskedSoftmax(values(backend, x), mask ? values(backend, mask) : null, maskRows, attrs.scale, y, rows, cols);
  return output(backend, x.shape, y);
};

/** inputs y, dy (same shape); attrs scale → dx = scale · y · (dy − Σ dy·y) per row. */
export const scaledSoftmaxGradNative: NativeKernelFunc = ({ inputs, backend, attrs }) => {
  const { y, dy } = inputs;
  const cols = y.shape[y.shape.length - 1];
  const dx = backend.allocate(size(y.shape));
  backend.addon.softmaxGrad(values(backend, y), values(backend, dy), attrs.scale, dx, size(y.shape) / cols, cols);
  return output(backend, y.shape, dx);
};
