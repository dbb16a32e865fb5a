/**
 * `mllm-labs parity` on every reference fixture (transformers 5.17 / peft 0.21 /
 * bitsandbytes' NF4), through the command's own code path, on the `cpu` and
 * `native` backends (webgpu.test.ts runs them on WebGPU).
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { runParity, fixtureKind, formatReport } from "../src/parity/run";
import { registerNativeBackend } from "../src/engine/native/register";
import { main } from "../src/cli/main";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const FIXTURES = path.join(__dirname, "fixtures");
const ALL = ["hf/llama", "hf/clip", "hf/llava", "hf/blip2", "hf/lora", "hf/whisper_mel", "hf/clip_preprocess", "nf4"];

beforeAll(() => {
  registerNativeBackend();
});

describe.each(["native", "cpu"])("parity on %s", (backend) => {
  it.each(ALL)(
    "%s: every output within tolerance",
    async (fixture) => {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const report = await runParity(path.join(FIXTURES, fixture));
      expect(report.results.length).toBeGreaterThan(0);
      for (const result of report.results) expect(result.ok, formatReport(report)).toBe(true);
      expect(tf.memory().numTensors, "tensors leaked by the parity run").toBe(before);
    },
    120_000,
  );
});

describe("fixture kinds", () => {
  it("recognises each kind from what the folder holds", () => {
    const kinds = ALL.map((fixture) => fixtureKind(path.join(FIXTURES, fixture)));
    expect(kinds).toEqual(["llama", "clip", "llava", "blip-2", "lora", "whisper_mel", "clip_preprocess", "nf4"]);
  });

  it("rejects a folder it cannot read, saying what it expected", () => {
    const empty = scratch("parity-");
    expect(() => fixtureKind(empty)).toThrow(/expected model\/config\.json/);
    expect(() => fixtureKind(path.join(empty, "missing"))).toThrow(/is not a directory/);
  });

  it("a fixture whose reference was altered fails, and the command exits 1", async () => {
    const copy = scratch("parity-");
    fs.cpSync(path.join(FIXTURES, "nf4"), copy, { recursive: true });
    const file = path.join(copy, "nf4.json");
    const fixture = JSON.parse(fs.readFileSync(file, "utf8"));
    fixture.cases.w_64x96.packed[10] ^= 1;
    fs.writeFileSync(file, JSON.stringify(fixture));
    const report = await runParity(copy);
    expect(report.ok).toBe(false);
    expect(report.results.find((result) => result.name === "w_64x96.packed")?.ok).toBe(false);
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((text: string) => (lines.push(text), true)) as any;
    try {
      expect(await main(["parity", copy, "--backend", "cpu", "--json"])).toBe(1);
    } finally {
      process.stdout.write = write;
    }
    expect(JSON.parse(lines.join("").trim().split("\n").pop()!).ok).toBe(false);
  });
});

describe("compareTensors", () => {
  it("a NaN anywhere fails the output and reports an infinite error", async () => {
    const { compareTensors } = await import("../src/parity/compare");
    const result = await compareTensors("x", Float32Array.from([NaN, 1, 2]), Float32Array.from([0, 1, 2]), 1e-4);
    expect(result.ok).toBe(false);
    expect(result.maxAbs).toBe(Infinity);
    const fine = await compareTensors("x", Float32Array.from([0, 1, 2.0001]), Float32Array.from([0, 1, 2]), 1e-4);
    expect(fine.ok).toBe(true);
    expect(fine.maxAbs).toBeCloseTo(1e-4, 6);
  });
});
