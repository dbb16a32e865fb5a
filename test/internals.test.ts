/**
 * Canaries for the tfjs and tslab internals the project reaches into. Each is behind one adapter
 * (src/engine/tfjs_internals.ts, src/kernel/tslab_internals.ts) and pinned to an exact version in
 * package.json; an upgrade fails here first, naming the adapter to update.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  TFJS_INTERNALS_VERSION,
  countEngineKernels,
  countWebGpuDispatches,
  dataStorage,
  isBackendStarted,
  runWebGpuMultiOutput,
  silenceCpuBanner,
  storedValues,
  recordTape,
  releaseTape,
  bufferCounts,
} from "../src/engine/tfjs_internals";
import {
  TSLAB_INTERNALS_VERSION,
  tslabConverter,
  tslabExecutor,
  tslabInspect,
  wireTslabDisplay,
} from "../src/kernel/tslab_internals";

const packageJson = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
const TFJS_PACKAGES = [
  "@tensorflow/tfjs",
  "@tensorflow/tfjs-core",
  "@tensorflow/tfjs-backend-cpu",
  "@tensorflow/tfjs-backend-webgpu",
];

describe("pinned versions", () => {
  it.each([...TFJS_PACKAGES.map((name) => [name, TFJS_INTERNALS_VERSION]), ["tslab", TSLAB_INTERNALS_VERSION]])(
    "%s is pinned to exactly %s and installed at it",
    (name, version) => {
      expect(packageJson.dependencies[name], `package.json must pin ${name} exactly (the adapters use its internals)`).toBe(
        version,
      );
      expect(require(`${name}/package.json`).version, `installed ${name}`).toBe(version);
    },
  );

  it("tfjs reports the pinned version at run time", () => {
    expect(tf.version.tfjs).toBe(TFJS_INTERNALS_VERSION);
  });
});

describe("tfjs internals (src/engine/tfjs_internals.ts)", () => {
  it("a CPU backend's DataStorage holds each tensor's values by data id", () => {
    const backend = new MathBackendCPU();
    silenceCpuBanner(backend); // its first write would print a banner
    const dataId = backend.write(Float32Array.from([1, 2, 3]), [3], "float32");
    const storage = dataStorage(backend);
    expect(storage.has(dataId)).toBe(true);
    expect(Array.from(storedValues(backend, dataId) as Float32Array)).toEqual([1, 2, 3]);
    expect(storage.delete(dataId)).toBe(true);
    expect(storage.has(dataId)).toBe(false);
    backend.dispose();
  });

  it("the CPU backend's private firstUse flag exists and is cleared", () => {
    const backend = new MathBackendCPU();
    expect((backend as unknown as { firstUse: unknown }).firstUse).toBe(true);
    silenceCpuBanner(backend);
    expect((backend as unknown as { firstUse: unknown }).firstUse).toBe(false);
    backend.dispose();
  });

  it("the engine's registry tells started backends from merely registered ones", async () => {
    await tf.setBackend("cpu");
    expect(isBackendStarted("cpu")).toBe(true);
    tf.registerBackend("canary-unstarted", () => new MathBackendCPU(), -1);
    expect(isBackendStarted("canary-unstarted")).toBe(false);
    tf.removeBackend("canary-unstarted");
  });

  it("the webgpu backend has runWebGPUProgram and recordAndSubmit; dispatches are counted through the latter", () => {
    const { WebGPUBackend } = require("@tensorflow/tfjs-backend-webgpu");
    expect(typeof WebGPUBackend.prototype.runWebGPUProgram).toBe("function");
    expect(typeof WebGPUBackend.prototype.recordAndSubmit).toBe("function");
    // The source of recordAndSubmit dispatches exactly once per call (the counting relies on it).
    expect(WebGPUBackend.prototype.recordAndSubmit.toString().match(/dispatchWorkgroups\(/g)).toHaveLength(1);
    const fake = {
      calls: 0,
      recordAndSubmit() {
        this.calls++;
      },
    };
    const count = countWebGpuDispatches(fake);
    fake.recordAndSubmit();
    fake.recordAndSubmit();
    expect([count(), fake.calls]).toEqual([2, 2]);
    expect(countWebGpuDispatches(fake)()).toBe(2); // wrapped once
  });

  it("the webgpu backend has the members a multi-output dispatch uses, and recordAndSubmit keeps the bookkeeping it mirrors", () => {
    const { WebGPUBackend } = require("@tensorflow/tfjs-backend-webgpu");
    for (const member of [
      "makeTensorInfo",
      "uploadToGPU",
      "tensorToBinding",
      "makeUniforms",
      "ensureCommandEncoderReady",
      "endComputePassEncoder",
      "submitQueue",
    ]) {
      expect(typeof WebGPUBackend.prototype[member], member).toBe("function");
    }
    const record = WebGPUBackend.prototype.recordAndSubmit.toString();
    for (const step of [
      "commandQueueOwnedIds.add",
      "ensureCommandEncoderReady()",
      "beginComputePass",
      "dispatchCountInPass++",
      "WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE",
      "submitQueue()",
    ]) {
      expect(record, `recordAndSubmit no longer does ${step}; runWebGpuMultiOutput mirrors it`).toContain(step);
    }
  });

  it("the engine's runKernelFunc is where registered kernels run (counted by countEngineKernels)", async () => {
    await tf.setBackend("cpu");
    const count = countEngineKernels();
    const before = count();
    tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).reshape([1]));
    expect(count() - before).toBe(2); // Add and Reshape (tf.scalar uploads, runs no kernel)
  });

  it("fails loudly, naming the adapter, when an internal is missing", () => {
    expect(() => runWebGpuMultiOutput({}, "x", "", [1, 1, 1], [], [])).toThrow(
      /tfjs internals changed: the webgpu backend has no makeTensorInfo\(\)/,
    );
    expect(() => dataStorage({})).toThrow(
      /tfjs internals changed: .*DataStorage.*src\/engine\/tfjs_internals.ts was written for tfjs 4.22.0/,
    );
    expect(() => silenceCpuBanner({})).toThrow(/tfjs internals changed: the CPU backend has no boolean `firstUse`/);
    expect(() => countWebGpuDispatches({})).toThrow(/no recordAndSubmit/);
  });
});

describe("tfjs tape and buffer internals (src/engine/tfjs_internals.ts)", () => {
  it("recordTape records the kernels with their saved tensors, and shape-only gradients keep shapes", () => {
    const x = tf.variable(tf.tensor2d([[1, 2, 3]]));
    const { value, tape } = recordTape(() => x.reshape([3]).square().sum());
    const reshape = tape.find((node) => node.kernelName === "Reshape")!;
    const square = tape.find((node) => node.kernelName === "Square")!;
    expect(reshape.saved!.length).toBeGreaterThan(0);
    expect(reshape.saved!.every((saved) => !(saved instanceof tf.Tensor) && saved.shape.join() === "1,3")).toBe(true);
    expect(square.saved!.length).toBeGreaterThan(0);
    expect(square.saved!.every((saved) => saved instanceof tf.Tensor)).toBe(true);
    for (const node of tape) tf.dispose((node.saved ?? []).filter((t) => t instanceof tf.Tensor) as tf.Tensor[]);
    releaseTape();
    tf.dispose([value, x]);
  });

  it("bufferCounts counts a buffer once however many tensors view it, and frees it with the last", () => {
    const counts = bufferCounts();
    const start = counts.bytes;
    const a = tf.zeros([4, 8]);
    const b = a.reshape([32]);
    expect(counts.bytes - start).toBe(4 * 8 * 4);
    a.dispose();
    expect(counts.bytes - start).toBe(4 * 8 * 4);
    b.dispose();
    expect(counts.bytes).toBe(start);
  });
});

describe("tslab internals (src/kernel/tslab_internals.ts)", () => {
  it("dist/converter, dist/executor and dist/inspect export what the kernel calls", () => {
    expect(tslabConverter().isCompleteCode("let x = 1;").completed).toBe(true);
    expect(tslabConverter().isCompleteCode("function f() {").completed).toBe(false);
    expect(typeof tslabConverter().createConverter).toBe("function");
    expect(tslabExecutor().createExecutor.length).toBe(3); // (rootDir, convs, console)
    expect(typeof tslabInspect().printQuickInfo).toBe("function");
  });

  it("tslab's public display writes through the dist/jupyter hook the kernel wires", () => {
    const jupyter = require("tslab/dist/jupyter");
    const before = jupyter.lastWriteDisplayData;
    const shown: unknown[] = [];
    try {
      expect(wireTslabDisplay((content) => shown.push(content.data))).toBe(true);
      require("tslab").display.text("canary");
      expect(shown).toEqual([{ "text/plain": "canary" }]);
    } finally {
      jupyter.lastWriteDisplayData = before;
    }
  });
});
