/** Products with a 4-bit weight on the `native` backend: native/quantized_matmul.cc (dequantized a panel at a time into the GEMM). */
import { intValues, output, values, type NativeKernelFunc } from "../../engine/native/tensor_io";
import type { NativeBackend } from "../../engine/native/backend";
import type { QuantizedMatMulAttrs } from "./attrs";

function run(transposeWeight: boolean): NativeKernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, packed, absmax, absmaxCodes, nestedAbsmax } = inputs;
    const settings = attrs as QuantizedMatMulAttrs;
    const rows = x.shape[0];
    const columns = transposeWeight ? settings.outFeatures : settings.inFeatures;
    const out = backend.allocate(rows * columns);
    const floatsOf = (t: typeof x | undefined) => (t ? values(backend, t) : null);
    backend.addon.quantizedMatmul(
      values(backend, x),
      rows,
      intValues(backend, packed),
      settings.code,
      floatsOf(absmax),
      absmaxCodes ? intValues(backend as NativeBackend, absmaxCodes) : null,
      absmaxCodes ? settings.nestedCode : null,
      floatsOf(nestedAbsmax),
      settings.offset,
      settings.outFeatures,
      settings.inFeatures,
      settings.blockSize,
      settings.nestedBlockSize,
      transposeWeight,
      out,
    );
    return output(backend, [rows, columns], out);
  };
}

/** inputs x [N, in], the weight's tensors → x · Wᵀ [N, out]. */
export const quantizedMatMulNative = run(true);
/** inputs dy [N, out], the weight's tensors → dy · W [N, in]. */
export const quantizedMatMulGradNative = run(false);
