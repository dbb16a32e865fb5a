/**
 * `MllmDequantizeBlockwise`: codes packed in int32 words → code[q] · absmax[block]
 * as float32, for 4-bit (two codes a byte, high nibble first — bitsandbytes'
 * order) and 8-bit (a code a byte) packings. Bytes sit little-endian in the
 * words, so the words are bitsandbytes' packed bytes viewed as int32.
 *
 * Kernels: plain loops on the `cpu` and `native` backends (they read the
 * input arrays directly) and a WGSL shader on `webgpu` (real 32-bit integer
 * shifts); elsewhere ({@link dequantizeComposite}) integer arithmetic in
 * tfjs ops, exact where the backend's int32 division is.
 */
import * as tf from "@tensorflow/tfjs";

export const DEQUANTIZE_KERNEL = "MllmDequantizeBlockwise";

/** Kernel attributes. */
export interface DequantizeAttrs {
  /** 4 or 8. */
  bits: number;
  /** Number of values. */
  count: number;
  /** Values per absmax. */
  blockSize: number;
}

/** Bytes (any length) → int32 words (zero-padded to a multiple of 4 bytes). */
export function bytesToWords(bytes: Uint8Array): Int32Array {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  return new Int32Array(padded.buffer);
}

/** The loop every CPU backend runs. */
function dequantizeValues(words: Int32Array, code: Float32Array, absmax: Float32Array, attrs: DequantizeAttrs): Float32Array {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Float32Array(attrs.count);
  const { blockSize, count } = attrs;
  if (attrs.bits === 4) {
    for (let i = 0; i < count; i++) {
      const byte = bytes[i >> 1];
      out[i] = Math.fround(code[i & 1 ? byte & 15 : byte >> 4] * absmax[(i / blockSize) | 0]);
    }
  } else {
    for (let i = 0; i < count; i++) out[i] = Math.fround(code[bytes[i]] * absmax[(i / blockSize) | 0]);
  }
  return out;
}

let registered = false;

/** Registers the kernel on the backends that have a direct implementation (idempotent). */
export function registerDequantizeKernels(): void {
  if (registered) return;
  registered = true;
  for (const backendName of ["cpu", "native"]) {
    tf.registerKernel({
      kernelName: DEQUANTIZE_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const cpu = backend as any;
        const { packed, code, absmax } = inputs as Record<string, tf.TensorInfo>;
        const read = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values;
        const out = dequantizeValues(read(packed) as Int32Array, Float32Array.from(read(code)), Float32Array.from(read(absmax)), attrs as unknown as DequantizeAttrs);
        return cpu.makeTensorInfo([(attrs as any).count], "float32", out);
      },
    });
  }
  tf.registerKernel({
    kernelName: DEQUANTIZE_KERNEL,
    backendName: "webgpu",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { packed, code, absmax } = inputs as Record<string, tf.TensorInfo>;
      const { bits, count, blockSize } = attrs as unknown as DequantizeAttrs;
      const body =
        bits === 4
          ? `let word = bitcast<u32>(packed[index / 8]);
            let byte = (word >> (u32((index / 2) % 4) * 8u)) & 255u;
            let q = select(byte >> 4u, byte & 15u, (index % 2) == 1);`
          : `let word = bitcast<u32>(packed[index / 4]);
            let q = (word >> (u32(index % 4) * 8u)) & 255u;`;
      // A tfjs-backend-webgpu program: inputs are bound as arrays named by `variableNames`;
      // a flat dispatch gives each invocation one output index (see its `webgpu_program.ts`).
      const program = {
        variableNames: ["packed", "code", "absmax"],
        outputShape: [count],
        shaderKey: `mllmDequantizeBlockwise${bits}`,
        dispatchLayout: { x: [0] },
        dispatch: [Math.ceil(count / 64), 1, 1],
        workgroupSize: [64, 1, 1],
        size: true,
        uniforms: "blockSize : i32,",
        getUserCode: () => `
        fn main(index : i32) {
          if (index < uniforms.size) {
            ${body}
            setOutputAtIndex(index, code[q] * absmax[index / uniforms.blockSize]);
          }
        }`,
      };
      return (backend as any).runWebGPUProgram(program, [packed, code, absmax], "float32", [{ type: "int32", data: [blockSize] }]);
    },
  });
}

/** The same computation in tfjs ops (backends without the kernel). */
export function dequantizeComposite(packed: tf.Tensor, code: tf.Tensor, absmax: tf.Tensor, attrs: DequantizeAttrs): tf.Tensor1D {
  return tf.tidy(() => {
    const words = packed.reshape([-1, 1]); // [W, 1]
    // Bytes of each word, little-endian: floor(word / 256^k) mod 256 (floored division works for negative words too).
    const byteList = [0, 1, 2, 3].map((k) => tf.mod(tf.floorDiv(words, tf.scalar(256 ** k, "int32")), tf.scalar(256, "int32")));
    const bytes = tf.concat(byteList, 1).reshape([-1]); // [4W]
    let codes: tf.Tensor;
    if (attrs.bits === 4) {
      const high = tf.floorDiv(bytes, tf.scalar(16, "int32"));
      const low = tf.mod(bytes, tf.scalar(16, "int32"));
      codes = tf.stack([high, low], 1).reshape([-1]); // [8W], element order: high then low nibble
    } else {
      codes = bytes;
    }
    const values = tf.gather(code, codes.slice([0], [attrs.count])); // [count]
    const blocks = absmax.shape[0] as number;
    const padded = tf.pad(values, [[0, blocks * attrs.blockSize - attrs.count]]).reshape([blocks, attrs.blockSize]);
    return padded.mul(absmax.reshape([blocks, 1])).reshape([-1]).slice([0], [attrs.count]) as tf.Tensor1D;
  });
}

/** packed: int32 words; code: float32 [16 or 256]; absmax: float32 [blocks] → float32 [count] */
export function dequantizeBlockwise(packed: tf.Tensor, code: tf.Tensor, absmax: tf.Tensor, attrs: DequantizeAttrs): tf.Tensor1D {
  registerDequantizeKernels();
  if (tf.getKernel(DEQUANTIZE_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(DEQUANTIZE_KERNEL, { packed, code, absmax }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  }
  return dequantizeComposite(packed, code, absmax, attrs);
}
