/** GELU (tanh) on the `native` backend: native/elementwise.cc (`unary` GeluTanh, `binary` GeluTanhGrad), AVX2 where the CPU has it. */
import { opCode } from "../../engine/native/op_codes";
import { output, size, values, type NativeKernelFunc } from "../../engine/native/tensor_io";

/** inputs x → gelu(x), same shape. */
export const geluNative: NativeKernelFunc = ({ inputs, backend }) => {
  const { x } = inputs;
  const out = backend.allocate(size(x.shape));
  backend.addon.unary(opCode("unary", "GeluTanh"), values(backend, x), out);
  return output(backend, x.shape, out);
};

/** inputs x, dy (same shape) → dy · gelu'(x). */
export const geluGradNative: NativeKernelFunc = ({ inputs, backend }) => {
  const { x, dy } = inputs;
  const out = backend.allocate(size(x.shape));
  backend.addon.binary(
    opCode("binary", "GeluTanhGrad"),
    values(backend, x),
    x.shape,
    values(backend, dy),
    dy.shape,
    out,
    x.shape,
  );
  return output(backend, x.shape, out);
};
