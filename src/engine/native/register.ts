/**
 * Registers the `native` backend with tfjs (once): every `cpu` kernel, then
 * the native overrides of {@link nativeKernels}. The project's fused ops
 * (src/kernels/) register their own native kernels when defined.
 */
import * as tf from "@tensorflow/tfjs";
import "../../kernels";
import { loadAddon } from "./addon";
import { NativeBackend } from "./backend";
import { nativeKernels } from "./kernels";

let registered: { ok: true; gemmKernel: string; threads: number } | { ok: false; reason: string } | undefined;

/** Registers the backend; says why not when the addon is missing. */
export function registerNativeBackend(): { ok: true; gemmKernel: string; threads: number } | { ok: false; reason: string } {
  if (registered) return registered;
  const { addon, reason } = loadAddon();
  if (!addon) return (registered = { ok: false, reason: reason! });
  // Idle memory the pool may keep: a training step reuses its whole working set, so the default is
  // generous (a quarter of the machine's memory, at most 4 GiB); MLLM_POOL_MB sets it.
  const defaultMegabytes = Math.min(4096, Math.floor(require("os").totalmem() / 4 / 1024 / 1024));
  const poolMegabytes = Number(process.env.MLLM_POOL_MB ?? defaultMegabytes);
  if (!Number.isFinite(poolMegabytes) || poolMegabytes < 0) {
    return (registered = { ok: false, reason: `native: MLLM_POOL_MB is "${process.env.MLLM_POOL_MB}"; expected a number of megabytes ≥ 0` });
  }
  tf.registerBackend("native", () => new NativeBackend(addon, poolMegabytes * 1024 * 1024), 0);
  for (const config of tf.getKernelsForBackend("cpu")) {
    // The project's own kernels (Mllm*) are registered per backend by src/kernels/registry.ts.
    if (config.kernelName.startsWith("Mllm") || tf.getKernel(config.kernelName, "native")) continue;
    tf.registerKernel({ ...config, backendName: "native" });
  }
  for (const [kernelName, kernelFunc] of Object.entries(nativeKernels())) {
    tf.unregisterKernel(kernelName, "native");
    tf.registerKernel({ kernelName, backendName: "native", kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  const info = addon.info();
  return (registered = { ok: true, gemmKernel: info.gemmKernel, threads: info.threads });
}
