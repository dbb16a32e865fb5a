/**
 * The registry of the project's own compute kernels (fused ops): for each op, its name, its composite
 * (plain tfjs ops, which every backend runs and autograd differentiates), and the tfjs kernels that
 * implement it per backend. Each op lives in its own folder, `src/kernels/<op>/`:
 *
 *   index.ts      the definition ({@link defineKernel}) and the op function the library calls
 *   composite.ts  the same computation in tfjs ops
 *   native.ts     the `native` backend's kernels (calls into the C++ addon, native/*.cc)
 *   webgpu.ts     the `webgpu` backend's kernels (WGSL programs)
 *
 * and `src/kernels/index.ts` lists every op, once. docs/KERNELS.md has the checklist for adding one.
 */
import * as tf from "@tensorflow/tfjs";

/** The backends a project kernel may be implemented for. */
export type KernelBackend = "cpu" | "native" | "webgpu";

/** What tfjs passes a kernel function: its named inputs, the backend running it, and the op's attributes. */
export interface KernelArgs {
  readonly inputs: Record<string, tf.TensorInfo>;
  readonly backend: object;
  readonly attrs: Record<string, any>;
}

/** One tfjs kernel's implementation per backend (a backend without one runs the composite). */
export type KernelImplementations = Readonly<Partial<Record<KernelBackend, (args: any) => tf.TensorInfo | tf.TensorInfo[]>>>;

/** One fused op. */
export interface KernelDefinition {
  /** The op's name in the library (its function's name), e.g. "gelu". */
  readonly op: string;
  /** What it computes, in one line. */
  readonly summary: string;
  /** The same computation in plain tfjs ops. */
  readonly composite: (...args: any[]) => unknown;
  /** The tfjs kernels the op runs (forward first, then its gradient), by kernel name. */
  readonly kernels: Readonly<Record<string, KernelImplementations>>;
  /** A gradient registered with tfjs for the forward kernel (ops that do not use `tf.customGrad`). */
  readonly gradient?: tf.GradConfig;
}

const definitions = new Map<string, KernelDefinition>();

/**
 * Registers an op's kernels with tfjs for every backend that implements them (tfjs keeps kernels per
 * backend name, so a backend that starts later finds them) and records the definition. Idempotent: a
 * second copy of the library in one process (src/ and dist/ in tests) finds them registered.
 */
export function defineKernel<Definition extends KernelDefinition>(definition: Definition): Definition {
  const known = definitions.get(definition.op);
  if (known && known !== definition && Object.keys(known.kernels).join() !== Object.keys(definition.kernels).join()) {
    throw new Error(
      `defineKernel: op "${definition.op}" is defined twice, with kernels ${Object.keys(known.kernels)} and ${Object.keys(definition.kernels)}`,
    );
  }
  definitions.set(definition.op, definition);
  for (const [kernelName, implementations] of Object.entries(definition.kernels)) {
    if (!/^Mllm[A-Z]\w*$/.test(kernelName))
      throw new Error(
        `defineKernel: kernel name "${kernelName}" of op "${definition.op}" must start with "Mllm" (tfjs's own names are reserved)`,
      );
    for (const [backendName, kernelFunc] of Object.entries(implementations)) {
      if (!kernelFunc || tf.getKernel(kernelName, backendName)) continue;
      tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as tf.KernelFunc });
    }
  }
  if (definition.gradient && !tf.getGradient(definition.gradient.kernelName)) tf.registerGradient(definition.gradient);
  return definition;
}

/** Every op defined so far, in definition order. */
export function kernelDefinitions(): readonly KernelDefinition[] {
  return [...definitions.values()];
}

/** Whether the current backend (or `backend`) has a kernel for every kernel of the op: its fused path can run. */
export function hasFusedKernels(definition: KernelDefinition, backend: string = tf.getBackend()): boolean {
  return Object.keys(definition.kernels).every((kernelName) => tf.getKernel(kernelName, backend) !== undefined);
}

/** The backends with an implementation of every kernel of the op. */
export function fusedBackends(definition: KernelDefinition): KernelBackend[] {
  const all: KernelBackend[] = ["cpu", "native", "webgpu"];
  return all.filter((backend) =>
    Object.values(definition.kernels).every((implementations) => implementations[backend] !== undefined),
  );
}
