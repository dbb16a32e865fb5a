/**
 * The WebGPU path (tfjs-backend-webgpu on Dawn's `webgpu` package): the same
 * model code gives the same results as the CPU backends. In CI it runs on
 * Mesa's lavapipe (a Vulkan driver on the CPU, installed by .ci/run). Without
 * lavapipe the file is skipped with a line saying how to install it; with
 * MLLM_REQUIRE_SYSTEM=1 (CI) a missing adapter fails it instead.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/index";
import { gptLossCurve } from "./helpers/gpt_curve";
import { registerNativeBackend } from "../src/engine/native/register";
import * as path from "node:path";
import { runParity, formatReport } from "../src/parity/run";
import { LAVAPIPE, skipWithout } from "./helpers/system";

const skip = skipWithout("WebGPU tests", LAVAPIPE);

beforeAll(async () => {
  if (skip) return;
  const info = await initEngine({ backend: "webgpu", verbose: false });
  expect(
    info.backend,
    `WebGPU did not start: ${info.notes.join("; ")} (Debian: mesa-vulkan-drivers from bookworm-backports)`,
  ).toBe("webgpu");
  registerNativeBackend();
}, 120_000);

async function on(backend: string, fn: () => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend(backend);
  const out = fn();
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

function maxRelative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(scale, 1e-12));
  return worst;
}

describe.skipIf(skip)("webgpu backend", () => {
  it("matMul, softmax, layer norm and GELU agree with native and cpu", async () => {
    const compute = () =>
      tf.tidy(() => {
        const x = tf.randomNormal([3, 17, 24], 0, 1, "float32", 1);
        const w = tf.randomNormal([24, 24], 0, 0.3, "float32", 2);
        const h = tf.matMul(x.reshape([-1, 24]), w).reshape([3, 17, 24]);
        const { mean, variance } = tf.moments(h, -1, true);
        const normed = h.sub(mean).mul(tf.rsqrt(variance.add(1e-5)));
        return tf.softmax(normed.mul(tf.sigmoid(normed.mul(1.702))), -1);
      });
    const webgpu = await on("webgpu", compute);
    const native = await on("native", compute);
    const cpu = await on("cpu", compute);
    expect(maxRelative(webgpu, cpu)).toBeLessThan(1e-4);
    expect(maxRelative(native, cpu)).toBeLessThan(1e-4);
  });

  it("trains the same 20-step GPT loss curve as cpu, with AdamW, without leaking tensors", async () => {
    const webgpu = await gptLossCurve("webgpu", "adamw");
    const native = await gptLossCurve("native", "adamw");
    const cpu = await gptLossCurve("cpu", "adamw");
    expect(webgpu[19]).toBeLessThan(webgpu[0] * 0.8);
    expect(maxRelative(webgpu, cpu)).toBeLessThan(1e-3);
    expect(maxRelative(native, cpu)).toBeLessThan(1e-3);
  }, 120_000);
});

describe.skipIf(skip)("parity on webgpu", () => {
  it.each(["hf/llama", "hf/clip", "hf/llava", "hf/blip2", "hf/lora", "nf4"])(
    "%s: every output within tolerance (WGSL dequantize kernel for nf4)",
    async (fixture) => {
      await tf.setBackend("webgpu");
      const report = await runParity(path.join(__dirname, "fixtures", fixture));
      for (const result of report.results) expect(result.ok, formatReport(report)).toBe(true);
      expect(report.results.length).toBeGreaterThan(0);
    },
    120_000,
  );
});

describe.skipIf(skip)("display helpers on webgpu", () => {
  it("show webgpu tensors exactly as cpu tensors (they read with await t.data(), never synchronously)", async () => {
    const { image, video, heatmap, audio, patchAttention, sensorChart } = await import("../kernel-extensions/index");
    const values = (n: number, seed: number) =>
      Float32Array.from({ length: n }, (_, i) => ((i * 7919 + seed * 104729) % 997) / 997);
    const bundles: Record<string, unknown>[][] = [];
    for (const backend of ["webgpu", "cpu"]) {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const picture = tf.tensor3d(values(8 * 8 * 3, 1), [8, 8, 3]);
      const frames = tf.tensor4d(values(3 * 8 * 8 * 3, 2), [3, 8, 8, 3]);
      const matrix = tf.tensor2d(values(4 * 4, 3), [4, 4]);
      const wave = tf.tensor1d(values(1600, 4).map((v) => v - 0.5));
      const flat = matrix.reshape([16]);
      const shown = [
        await image(picture),
        await video(frames),
        await heatmap(matrix),
        await audio(wave, { sampleRate: 16000 }),
        await patchAttention(picture, flat),
        await sensorChart(matrix, { sampleRate: 50 }),
      ];
      bundles.push(shown.map((rich) => rich.data));
      tf.dispose([picture, frames, matrix, wave, flat]);
      expect(tf.memory().numTensors, `tensors left on ${backend}`).toBe(before);
    }
    const [webgpu, cpu] = bundles;
    for (let k = 0; k < cpu.length; k++) {
      for (const mime of ["text/plain", "image/png", "image/svg+xml"])
        expect(webgpu[k][mime], `output ${k} ${mime}`).toEqual(cpu[k][mime]);
    }
  }, 60_000);
});
