/**
 * Reading inputs and making outputs in the native backend's kernels (the standard ones in
 * kernels.ts and the project's fused ones in src/kernels/<op>/native.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { storedValues } from "../tfjs_internals";
import type { NativeBackend } from "./backend";

/** A native kernel: tfjs's kernel function, with the backend typed. */
export type NativeKernelFunc = (args: { inputs: Record<string, tf.TensorInfo>; backend: NativeBackend; attrs: Record<string, any> }) => tf.TensorInfo | tf.TensorInfo[];

/** A float32 tensor's values as a Float32Array (some cpu kernels, e.g. Cast from bool, store float32 data in other typed arrays). */
export function values(backend: NativeBackend, t: tf.TensorInfo): Float32Array {
  const stored = storedValues(backend, t.dataId);
  return stored instanceof Float32Array ? stored : Float32Array.from(stored as ArrayLike<number>);
}

/** An int32 tensor's values. */
export function intValues(backend: NativeBackend, t: tf.TensorInfo): Int32Array {
  return storedValues(backend, t.dataId) as Int32Array;
}

/** A float32 output tensor over `data` (from the pool or fresh). */
export function output(backend: NativeBackend, shape: number[], data: Float32Array): tf.TensorInfo {
  return backend.makeTensorInfo(shape, "float32", data);
}

/** Whether every given input is float32. */
export function floats(...inputs: (tf.TensorInfo | undefined)[]): boolean {
  return inputs.every((t) => t === undefined || t.dtype === "float32");
}

/** Number of elements of a shape. */
export const size = (shape: number[]): number => tf.util.sizeFromShape(shape);
