/**
 * Choosing the tensor backend every lab runs on.
 *
 * Order, unless the `backend` argument or the `MLLM_BACKEND` variable names one:
 *   1. `webgpu` when Dawn's `webgpu` package and `@tensorflow/tfjs-backend-webgpu`
 *      are installed and a hardware adapter is found;
 *   2. `tensorflow` when `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node` loads;
 *   3. `native`: tfjs's CPU backend with C++ kernels (native/, built at `npm install`);
 *   4. `cpu` (tfjs's pure JavaScript backend), always available.
 * A missing or broken option falls through with a one-line reason; nothing
 * here is required at import time.
 */
import * as tf from "@tensorflow/tfjs";
import { isSoftwareAdapter, probeAdapterQuietly } from "./webgpu_probe";
import "../kernels"; // defines the project's fused ops, with their kernels for every backend
import { isBackendStarted, silenceCpuBanner } from "./tfjs_internals";

/** The backends {@link initEngine} can choose. */
export type BackendName = "webgpu" | "tensorflow" | "native" | "cpu";

/** Options for {@link initEngine}. */
export interface EngineArgs {
  /** Backend to use; default: `MLLM_BACKEND`, else the first that works in the order above. */
  backend?: BackendName;
  /** Print the one-line report. Default: true. */
  verbose?: boolean;
}

/** What {@link initEngine} chose. */
export interface EngineInfo {
  backend: BackendName;
  /** The device in words, e.g. "CPU (JavaScript, 2 cores)". */
  device: string;
  /** One line per option that was skipped, with the reason. */
  notes: string[];
}

const BACKENDS: readonly BackendName[] = ["webgpu", "tensorflow", "native", "cpu"];

let current: EngineInfo | undefined;
/** Whether the one-line report was printed for {@link current}. */
let reported = false;

/**
 * Loads an optional module. `load` defaults to a require by (variable) name, which bundlers leave
 * alone; pass `() => require("literal")` for a module a bundle should carry.
 */
function tryRequire(name: string, load: () => any = () => require(name)): { module?: any; reason?: string } {
  try {
    return { module: load() };
  } catch (error) {
    const message =
      (error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" ? "not installed" : (error as Error).message.split("\n")[0];
    return { reason: `${name}: ${message}` };
  }
}

/** Drops this process's reference to Dawn's GPU object: while one exists, Node does not exit. */
function releaseGpu(): void {
  const navigator = (globalThis as any).navigator;
  if (navigator && "gpu" in navigator) delete navigator.gpu;
}

async function tryWebGpu(explicit: boolean): Promise<{ device?: string; reason?: string }> {
  const result = await startWebGpu(explicit);
  if (!result.device) releaseGpu();
  return result;
}

const CPU_HANDOFF_FLAG = "WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD";

/** The started webgpu backend's device in words, until {@link closeEngine}. */
let webGpuDevice: string | undefined;

async function startWebGpu(explicit: boolean): Promise<{ device?: string; reason?: string }> {
  if (webGpuDevice && isBackendStarted("webgpu")) {
    // Back to webgpu after another backend: reuse its device (a second Dawn instance in one process
    // aborts it with std::system_error "Invalid argument").
    if (!(await tf.setBackend("webgpu"))) return { reason: "webgpu: tfjs could not switch back to the started backend" };
    return { device: webGpuDevice };
  }
  if (!explicit) {
    // Look in a child process first: a software adapter is not used unless asked for, and Dawn's
    // start-up warnings about it should not reach this process's stderr (engine/webgpu_probe).
    const probe = await probeAdapterQuietly();
    if (probe && !probe.found) return { reason: "webgpu: no GPU adapter found" };
    if (probe?.software) return { reason: `webgpu: only a software adapter (${probe.description}) found` };
  }
  const dawn = tryRequire("webgpu", () => require("webgpu"));
  if (!dawn.module) return { reason: dawn.reason };
  // tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is first imported.
  const { create, globals } = dawn.module;
  Object.assign(globalThis, globals);
  const gpu = create([]);
  (globalThis as any).navigator ??= {};
  (globalThis as any).navigator.gpu = gpu;
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { reason: "webgpu: no GPU adapter found" };
  // tfjs-backend-webgpu hands small tensors to its CPU kernels, which read GPU data
  // synchronously — impossible in Node. Keep everything on the GPU; the module reads the
  // threshold when it loads, so the flag is registered here first if it is not yet.
  try {
    tf.env().set(CPU_HANDOFF_FLAG, 0);
  } catch {
    tf.env().registerFlag(CPU_HANDOFF_FLAG, () => 0);
  }
  const backend = tryRequire("@tensorflow/tfjs-backend-webgpu", () => require("@tensorflow/tfjs-backend-webgpu"));
  if (!backend.module) return { reason: backend.reason };
  const info = adapter.info ?? {};
  const software = isSoftwareAdapter(info);
  // A software rasteriser is slower than the native CPU kernels: used only when asked for by name (CI tests WebGPU code on it).
  if (software && !explicit) return { reason: "webgpu: only a software adapter (lavapipe) found" };
  if (!(await tf.setBackend("webgpu"))) return { reason: "webgpu: tfjs could not initialise the backend" };
  webGpuDevice = `GPU (${[info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU adapter"})`;
  return { device: webGpuDevice };
}

async function tryTensorflow(): Promise<{ device?: string; reason?: string }> {
  // Loading either package registers the "tensorflow" backend with tfjs.
  const gpu = tryRequire("@tensorflow/tfjs-node-gpu");
  if (!gpu.module) {
    const cpu = tryRequire("@tensorflow/tfjs-node");
    if (!cpu.module) return { reason: `tensorflow: ${gpu.reason}; ${cpu.reason}` };
  }
  if (!(await tf.setBackend("tensorflow"))) return { reason: "tensorflow: tfjs could not initialise the backend" };
  return { device: "libtensorflow (tfjs-node)" };
}

async function tryNative(): Promise<{ device?: string; reason?: string }> {
  const { registerNativeBackend } = await import("./native/register");
  const registered = registerNativeBackend();
  if (!registered.ok) return { reason: registered.reason };
  if (!(await tf.setBackend("native"))) return { reason: "native: tfjs could not initialise the backend" };
  return { device: "CPU (C++ kernels)" };
}

async function tryCpu(): Promise<{ device?: string; reason?: string }> {
  if (!(await tf.setBackend("cpu"))) return { reason: "cpu: tfjs could not initialise the backend" };
  // The cpu backend prints a long banner about tfjs-node on its first write; the report line says it better.
  silenceCpuBanner(tf.backend());
  return { device: "CPU (tfjs JavaScript kernels)" };
}

const TRY: Record<BackendName, (explicit: boolean) => Promise<{ device?: string; reason?: string }>> = {
  webgpu: tryWebGpu,
  tensorflow: tryTensorflow,
  native: tryNative,
  cpu: tryCpu,
};

/** Parses a backend name, quoting a bad one. */
export function parseBackendName(value: string, source: string): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`${source} is "${value}"; expected one of ${BACKENDS.join(", ")}`);
}

/**
 * Chooses and starts the backend; later calls return the first choice unless
 * another backend is named. Prints one line: `engine: cpu on CPU (...)`.
 */
export async function initEngine(args: EngineArgs = {}): Promise<EngineInfo> {
  const envChoice = process.env.MLLM_BACKEND ? parseBackendName(process.env.MLLM_BACKEND, "MLLM_BACKEND") : undefined;
  const wanted = args.backend ?? envChoice;
  if (current && (wanted === undefined || wanted === current.backend)) {
    if ((args.verbose ?? true) && !reported) report(current, false);
    return current;
  }
  // A named backend first; if it cannot start, the usual order (the reason is printed).
  const order = wanted ? [wanted, ...BACKENDS.filter((name) => name !== wanted)] : [...BACKENDS];
  const notes: string[] = [];
  for (const name of order) {
    let result: { device?: string; reason?: string };
    try {
      result = await TRY[name](name === wanted);
    } catch (error) {
      result = { reason: `${name}: ${(error as Error).message.split("\n")[0]}` };
    }
    if (result.device) {
      current = { backend: name, device: result.device, notes };
      reported = false;
      if (args.verbose ?? true) report(current, wanted !== undefined);
      return current;
    }
    notes.push(result.reason ?? `${name}: unavailable`);
  }
  throw new Error(`no backend could start: ${notes.join("; ")}`);
}

function report(info: EngineInfo, showNotes: boolean): void {
  for (const note of showNotes ? info.notes : []) console.log(`engine: skipped ${note}`);
  console.log(`engine: ${info.backend} on ${info.device}`);
  reported = true;
}

/**
 * Releases the engine's GPU (if WebGPU was started) so that the process can exit, and forgets the
 * choice; the next {@link initEngine} chooses again. Tensors on the GPU must be disposed first.
 */
export function closeEngine(): void {
  // Only a backend that was started holds a device; tf.findBackend would start a merely registered one (and print why it cannot).
  if (isBackendStarted("webgpu")) tf.removeBackend("webgpu"); // disposes its device
  releaseGpu();
  webGpuDevice = undefined;
  current = undefined;
  reported = false;
}

/** The engine chosen so far, or undefined before {@link initEngine}. */
export function engineInfo(): EngineInfo | undefined {
  return current;
}
