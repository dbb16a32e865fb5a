/**
 * The tfjs internals the engine reaches into, each behind one function here, so that an upgrade breaks
 * in one place, loudly (test/internals.test.ts is the canary). Pinned: @tensorflow/tfjs, -core,
 * -backend-cpu and -backend-webgpu at exactly {@link TFJS_INTERNALS_VERSION} in package.json.
 *
 * Reference: tfjs 4.22.0 `tfjs-core/src/engine.ts` (`Engine.registry`), `tfjs-core/src/backends/backend.ts`
 * (`DataStorage`), `tfjs-backend-cpu/src/backend_cpu.ts` (`data`, `firstUse`),
 * `tfjs-backend-webgpu/src/backend_webgpu.ts` (`runWebGPUProgram`, `recordAndSubmit`) and
 * `tfjs-backend-webgpu/src/webgpu_program.ts` (the program object).
 */
import * as tf from "@tensorflow/tfjs";

/** The tfjs version whose internals this file was written against. */
export const TFJS_INTERNALS_VERSION = "4.22.0";

function changed(what: string, found: unknown): Error {
  return new Error(
    `tfjs internals changed: ${what} (found ${typeof found}). src/engine/tfjs_internals.ts was written for tfjs ${TFJS_INTERNALS_VERSION} ` +
      `(installed: ${tf.version.tfjs}); update the adapter and its canary test, test/internals.test.ts`,
  );
}

/** What a CPU-family backend (cpu, native) stores per tensor: its values, among other fields. */
export interface StoredData {
  values?: unknown;
}

/** tfjs's `DataStorage`: a CPU-family backend's map from data id to stored data. */
export interface DataStorage {
  get(dataId: object): StoredData;
  set(dataId: object, value: StoredData): void;
  has(dataId: object): boolean;
  delete(dataId: object): boolean;
}

/** The `DataStorage` of a CPU-family backend (`backend.data`). */
export function dataStorage(backend: object): DataStorage {
  const storage = (backend as { data?: DataStorage }).data;
  for (const method of ["get", "set", "has", "delete"] as const) {
    if (typeof storage?.[method] !== "function")
      throw changed(`a CPU backend's \`data\` (DataStorage) has no ${method}()`, storage?.[method]);
  }
  return storage!;
}

/** The values a CPU-family backend stores for a tensor (a typed array; strings for string tensors). */
export function storedValues(backend: object, dataId: object): unknown {
  return dataStorage(backend).get(dataId).values;
}

/** Stops tfjs's CPU backend from printing its banner about tfjs-node on its first write (the private `firstUse`). */
export function silenceCpuBanner(backend: object): void {
  const cpu = backend as { firstUse?: unknown };
  if (typeof cpu.firstUse !== "boolean") throw changed("the CPU backend has no boolean `firstUse`", cpu.firstUse);
  cpu.firstUse = false;
}

/** Whether backend `name` has been started (instantiated), without starting it as `tf.findBackend` would. */
export function isBackendStarted(name: string): boolean {
  const registry = (tf.engine() as unknown as { registry?: Record<string, unknown> }).registry;
  if (typeof registry !== "object" || registry === null)
    throw changed("the engine has no `registry` of started backends", registry);
  return registry[name] !== undefined;
}

/**
 * A tfjs-backend-webgpu program: inputs are bound as arrays named by `variableNames`; with `size` and a
 * flat `dispatchLayout` each invocation gets one output index (`main(index)`); `uniforms` declares the
 * program's own uniforms, whose values `runWebGpuProgram` takes in the same order.
 */
export interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean;
  uniforms?: string;
  /** Bind the output as read-write storage (tfjs: `atomic`), for programs that read back what they wrote. */
  atomic?: boolean;
  getUserCode: () => string;
}

/** One uniform value of a program's own uniforms. */
export interface WebGpuUniform {
  type: "int32" | "float32" | "uint32";
  data: number[];
}

/** Runs a WGSL program on the webgpu backend (`runWebGPUProgram`); returns the output tensor info. */
export function runWebGpuProgram(
  backend: object,
  program: WebGpuProgram,
  inputs: tf.TensorInfo[],
  dtype: tf.DataType,
  uniforms?: WebGpuUniform[],
): tf.TensorInfo {
  const run = (backend as { runWebGPUProgram?: unknown }).runWebGPUProgram;
  if (typeof run !== "function") throw changed("the webgpu backend has no runWebGPUProgram()", run);
  return run.call(backend, program, inputs, dtype, uniforms);
}

/**
 * Counts the compute dispatches of a started webgpu backend from now on: wraps its private
 * `recordAndSubmit` (one `dispatchWorkgroups` per call). Returns a reader of the count.
 */
export function countWebGpuDispatches(backend: object): () => number {
  const target = backend as { recordAndSubmit?: (...args: unknown[]) => unknown; mllmDispatches?: { count: number } };
  if (target.mllmDispatches) return () => target.mllmDispatches!.count;
  const record = target.recordAndSubmit;
  if (typeof record !== "function") throw changed("the webgpu backend has no recordAndSubmit()", record);
  const counter = { count: 0 };
  target.mllmDispatches = counter;
  target.recordAndSubmit = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return record.apply(this, args);
  };
  return () => counter.count;
}

/**
 * Counts the registered kernels the engine runs from now on, on any backend: wraps the engine's
 * `runKernelFunc` and counts the calls that name a kernel (custom-gradient scopes name none). Kernels
 * that call other kernels' functions directly count once. Returns a reader of the count.
 */
export function countEngineKernels(): () => number {
  const engine = tf.engine() as unknown as {
    runKernelFunc?: (params: { kernelName?: string }) => unknown;
    mllmKernels?: { count: number };
  };
  if (engine.mllmKernels) return () => engine.mllmKernels!.count;
  const run = engine.runKernelFunc;
  if (typeof run !== "function") throw changed("the engine has no runKernelFunc()", run);
  const counter = { count: 0 };
  engine.mllmKernels = counter;
  engine.runKernelFunc = function (this: unknown, params: { kernelName?: string }) {
    if (params.kernelName != null) counter.count++;
    return run.call(this, params);
  };
  return () => counter.count;
}

/** The webgpu backend's members a multi-output dispatch uses (tfjs-backend-webgpu 4.22's `WebGPUBackend`). */
const MULTI_OUTPUT_MEMBERS = [
  "makeTensorInfo",
  "uploadToGPU",
  "tensorToBinding",
  "makeUniforms",
  "ensureCommandEncoderReady",
  "endComputePassEncoder",
  "submitQueue",
] as const;

/**
 * Runs a complete WGSL compute shader that writes several outputs, in one dispatch on the webgpu
 * backend's command stream (tfjs's programs write one output each). Bindings, in order: the outputs
 * (`var<storage, read_write>`, float32, of `outputShapes`), the inputs (`var<storage, read>`), then
 * the uniforms (`var<uniform>`) when given. Records the dispatch as tfjs's `recordAndSubmit` does
 * (same pass, same submit batching, counted by {@link countWebGpuDispatches}).
 */
export function runWebGpuMultiOutput(
  backend: object,
  shaderKey: string,
  wgsl: string,
  workgroups: [number, number, number],
  inputs: tf.TensorInfo[],
  outputShapes: number[][],
  uniforms: WebGpuUniform[] = [],
): tf.TensorInfo[] {
  const b = backend as Record<string, any>;
  for (const member of MULTI_OUTPUT_MEMBERS)
    if (typeof b[member] !== "function") throw changed(`the webgpu backend has no ${member}()`, b[member]);
  for (const field of ["device", "pipelineCache", "commandQueueOwnedIds"])
    if (typeof b[field] !== "object" || b[field] === null) throw changed(`the webgpu backend has no \`${field}\``, b[field]);
  const outputs: tf.TensorInfo[] = outputShapes.map((shape) => b.makeTensorInfo(shape, "float32"));
  for (const t of [...inputs, ...outputs]) b.uploadToGPU(t.dataId);
  const key = `mllm_multi_${shaderKey}`;
  b.pipelineCache[key] ??= b.device.createComputePipeline({
    layout: "auto",
    compute: { module: b.device.createShaderModule({ code: wgsl }), entryPoint: "main" },
  });
  const pipeline = b.pipelineCache[key];
  const resources = [...outputs, ...inputs].map((t) => b.tensorToBinding(t));
  if (uniforms.length > 0) resources.push(b.makeUniforms(uniforms));
  for (const t of [...inputs, ...outputs]) b.commandQueueOwnedIds.add(t.dataId);
  const bindGroup = b.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: resources.map((resource, binding) => ({ binding, resource })),
  });
  b.ensureCommandEncoderReady();
  b.computePassEncoder ??= b.commandEncoder.beginComputePass({});
  b.computePassEncoder.setPipeline(pipeline);
  b.computePassEncoder.setBindGroup(0, bindGroup);
  b.computePassEncoder.dispatchWorkgroups(...workgroups);
  b.dispatchCountInPass++;
  if (b.mllmDispatches) b.mllmDispatches.count++;
  if ((tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number) <= b.dispatchCountInPass) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
  return outputs;
}

/** One recorded kernel call on tfjs's gradient tape (tfjs-core 4.22 `tape.ts` `TapeNode`). */
export interface TapeNode {
  readonly id: number;
  readonly kernelName: string;
  readonly inputs: Record<string, tf.Tensor>;
  readonly outputs: tf.Tensor[];
  /** Given the outputs' gradients (null where an output has none), the inputs' gradient thunks. */
  readonly gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  /** The tensors the gradient reads (kept clones: the walk that consumes the node frees them); see {@link recordTape}. */
  readonly saved?: (tf.Tensor | { readonly shape: number[] })[];
}

/** tfjs's kernels whose registered gradients read only the shapes of the inputs they save (tfjs-core 4.22 `gradients/`). */
export const SHAPE_ONLY_GRADIENTS: ReadonlySet<string> = new Set(["Reshape", "Add", "Sub", "ExpandDims"]);

type AddTapeNode = (
  kernelName: string,
  inputs: Record<string, tf.Tensor>,
  outputs: tf.Tensor[],
  gradientsFunc: unknown,
  saved: unknown[],
  attrs: unknown,
) => void;

interface TapeEngine {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode: AddTapeNode;
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T>(name: string, f: () => T): T;
}

function tapeEngine(): TapeEngine {
  const engine = tf.engine() as unknown as TapeEngine;
  for (const method of ["startTape", "endTape", "scopedRun", "tidy", "addTapeNode"] as const)
    if (typeof engine[method] !== "function") throw changed(`the engine has no ${method}()`, engine[method]);
  if (typeof engine.state?.gradientDepth !== "number")
    throw changed("the engine state has no numeric `gradientDepth`", engine.state?.gradientDepth);
  return engine;
}

/** How many gradient computations enclose this point (0: none; a walk at depth 0 may free what it consumes). */
export function gradientDepth(): number {
  return tapeEngine().state.gradientDepth;
}

/**
 * Runs `f` with tfjs's gradient tape recording, as `engine.gradients` does (in a tidy named "forward"), and
 * returns its value with the recorded tape. Call only at gradient depth 0; hand the tape back with
 * {@link releaseTape} once walked.
 *
 * Kernels in {@link SHAPE_ONLY_GRADIENTS} save no tensor: tfjs saves a reshape's or an addition's inputs
 * although their gradients read only the shapes, which keeps activations alive that PyTorch frees; their
 * nodes get the shapes instead (the same gradient function, so the same gradients). Their `saved` then
 * holds shape stand-ins, not tensors.
 */
export function recordTape<T extends tf.Tensor>(f: () => T): { value: T; tape: TapeNode[] } {
  const engine = tapeEngine();
  const addTapeNode = engine.addTapeNode;
  engine.addTapeNode = function (this: unknown, kernelName, inputs, outputs, gradientsFunc, saved, attrs) {
    if (SHAPE_ONLY_GRADIENTS.has(kernelName) && Array.isArray(saved) && saved.length > 0) {
      const standIns = saved.map((tensor) => {
        const { shape, rank, dtype } = tensor as tf.Tensor;
        return { shape: shape.slice(), rank, dtype };
      });
      tf.dispose(saved as tf.Tensor[]);
      saved = standIns;
    }
    return addTapeNode.call(this, kernelName, inputs, outputs, gradientsFunc, saved, attrs);
  };
  try {
    const value = engine.scopedRun(
      () => engine.startTape(),
      () => engine.endTape(),
      () => engine.tidy("forward", f),
    );
    const tape = engine.state.activeTape;
    if (!Array.isArray(tape)) throw changed("the engine recorded no `activeTape` array", tape);
    return { value, tape };
  } finally {
    engine.addTapeNode = addTapeNode;
  }
}

/** Drops the engine's reference to a walked tape (what `engine.gradients` does at depth 0 after freeing `saved`). */
export function releaseTape(): void {
  const engine = tapeEngine();
  if (engine.state.gradientDepth === 0) engine.state.activeTape = null;
}

/** What the engine records per tensor buffer (tfjs-core 4.22 `EngineState.tensorInfo` values). */
interface BufferInfo {
  bytes: number;
}

/** Live counts of the buffers created since a {@link BufferMeter} started. */
export interface BufferCounts {
  /** Bytes of the live buffers (each once, however many tensors view it). */
  bytes: number;
  /** The most `bytes` has been since the last reset. */
  peak: number;
}

type PatchedInfoMap = WeakMap<object, BufferInfo> & { mllmBuffers?: BufferCounts };

/**
 * Counts tensor buffers rather than tensors: tfjs's `numBytes` adds a tensor's size for every tensor, so a
 * reshape, a clone (what the gradient tape saves) or a variable's snapshot of one buffer count again,
 * while the memory is held once. Wraps the engine's buffer table (`state.tensorInfo`, one entry per
 * data id, removed when the backend frees the buffer), so the counts follow every allocation and free as
 * they happen, on every backend. Buffers created before the first call are not counted.
 */
export function bufferCounts(): BufferCounts {
  const state = (tf.engine() as unknown as { state?: { tensorInfo?: PatchedInfoMap } }).state;
  const table = state?.tensorInfo;
  if (!table || typeof table.set !== "function" || typeof table.delete !== "function" || typeof table.has !== "function")
    throw changed("the engine state has no `tensorInfo` table", table);
  if (table.mllmBuffers) return table.mllmBuffers;
  const counts: BufferCounts = { bytes: 0, peak: 0 };
  const counted = new WeakSet<object>();
  const set = table.set.bind(table);
  const remove = table.delete.bind(table);
  table.set = (dataId: object, info: BufferInfo) => {
    if (!table.has(dataId) && typeof info?.bytes === "number") {
      counted.add(dataId);
      counts.bytes += info.bytes;
      if (counts.bytes > counts.peak) counts.peak = counts.bytes;
    }
    return set(dataId, info);
  };
  table.delete = (dataId: object) => {
    if (counted.has(dataId) && table.has(dataId)) {
      counted.delete(dataId);
      counts.bytes -= table.get(dataId)!.bytes;
    }
    return remove(dataId);
  };
  table.mllmBuffers = counts;
  return counts;
}
