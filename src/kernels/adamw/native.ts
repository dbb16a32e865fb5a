/** AdamW on the `native` backend: native/optimizer.cc (`adamw_update`, AVX2 where the CPU has it). */
import { output, size, values, type NativeKernelFunc } from "../../engine/native/tensor_io";

/** inputs param, grad, m, v (one shape); attrs: AdamWStepAttrs → [param', m', v']. */
export const adamwNative: NativeKernelFunc = ({ inputs, backend, attrs }) => {
  const { param, grad, m, v } = inputs;
  const n = size(param.shape);
  const [p2, m2, v2] = [backend.allocate(n), backend.allocate(n), backend.allocate(n)];
  backend.addon.adamw(
    values(backend, param),
    values(backend, grad),
    values(backend, m),
    values(backend, v),
    attrs.learningRate,
    attrs.beta1,
    attrs.beta2,
    attrs.epsilon,
    attrs.weightDecay,
    attrs.biasCorrection1,
    attrs.biasCorrection2,
    p2,
    m2,
    v2,
  );
  return [output(backend, param.shape, p2), output(backend, param.shape, m2), output(backend, param.shape, v2)];
};
