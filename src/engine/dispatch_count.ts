/**
 * How many kernels a piece of work dispatches on the current backend — the number that sets a small
 * model's step time on a GPU, where each dispatch has a fixed cost (issue 21: about 80 µs each on
 * WebGPU). On `webgpu` it counts GPU compute dispatches (`dispatchWorkgroups` calls; a reshape is
 * none, a kernel made of several programs is several); on the CPU backends (`native`, `cpu`) the
 * registered kernels the engine runs. The count depends on the model's code and shapes only, so a test
 * can check it.
 */
import * as tf from "@tensorflow/tfjs";
import { countEngineKernels, countWebGpuDispatches } from "./tfjs_internals";

/** What {@link startDispatchCount} counts on a backend. */
export function dispatchUnit(backend: string = tf.getBackend()): "gpu dispatches" | "kernels" {
  return backend === "webgpu" ? "gpu dispatches" : "kernels";
}

/** Starts counting on the current backend; the returned function gives the count since this call. */
export function startDispatchCount(): () => number {
  const read = tf.getBackend() === "webgpu" ? countWebGpuDispatches(tf.backend()) : countEngineKernels();
  const start = read();
  return () => read() - start;
}
