/**
 * Loading the native kernels (`build/Release/mllm_native.node`, built from
 * `native/` by `npm install`). Loading is lazy and never throws: a missing or
 * broken addon gives a one-line reason and the engine falls back.
 */
import * as fs from "fs";
import * as path from "path";
import { projectRoot } from "../../util/project_root";

/** The addon's functions (see native/addon.cc). Shapes are arrays of numbers; op codes and reduce kinds come from `opCode` (./op_codes). */
export interface NativeAddon {
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batch: number, M: number, N: number, K: number, transA: boolean, transB: boolean, strideA: number, strideB: number, strideC: number): void;
  binary(op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], out: Float32Array, outShape: number[]): void;
  unary(op: number, x: Float32Array, out: Float32Array): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  reduce(kind: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  reduceColumns(kind: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  transpose(x: Float32Array, shape: number[], perm: number[], out: Float32Array): void;
  gather(x: Float32Array, outer: number, axisSize: number, inner: number, indices: Int32Array, out: Float32Array): void;
  segmentSum(x: Float32Array, ids: Int32Array, inner: number, segments: number, out: Float32Array): void;
  layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, D: number, eps: number, y: Float32Array, mean: Float32Array, rstd: Float32Array): void;
  layerNormGrad(dy: Float32Array, x: Float32Array, gamma: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, D: number, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array): void;
  maskedSoftmax(x: Float32Array, mask: Float32Array | null, maskRows: number, scale: number, y: Float32Array, rows: number, cols: number): void;
  softmaxGrad(y: Float32Array, dy: Float32Array, scale: number, dx: Float32Array, rows: number, cols: number): void;
  rmsNorm(x: Float32Array, weight: Float32Array, rows: number, D: number, eps: number, y: Float32Array, rstd: Float32Array): void;
  rmsNormGrad(dy: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, rows: number, D: number, dx: Float32Array, dweight: Float32Array): void;
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, biasCorrection1: number, biasCorrection2: number, pOut: Float32Array, mOut: Float32Array, vOut: Float32Array): void;
  quantizedMatmul(x: Float32Array, rows: number, packed: Int32Array, code: Float32Array, absmax: Float32Array | null, absmaxCodes: Int32Array | null, nestedCode: Float32Array | null, nestedAbsmax: Float32Array | null, offset: number, outFeatures: number, inFeatures: number, blockSize: number, nestedBlockSize: number, transposeWeight: boolean, out: Float32Array): void;
  info(): { gemmKernel: string; threads: number };
  setThreads(n: number): void;
}

let loaded: { addon?: NativeAddon; reason?: string } | undefined;

/** The addon's path. */
export function addonPath(): string {
  return path.join(projectRoot(), "build", "Release", "mllm_native.node");
}

/** The addon, or the reason it is not available. */
export function loadAddon(): { addon?: NativeAddon; reason?: string } {
  if (loaded) return loaded;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    loaded = { reason: `native: the addon is not built (${path.relative(projectRoot(), file)} missing; \`npm run build:native\` builds it)` };
    return loaded;
  }
  try {
    loaded = { addon: require(file) as NativeAddon };
  } catch (error) {
    loaded = { reason: `native: the addon does not load: ${(error as Error).message.split("\n")[0]}` };
  }
  return loaded;
}
