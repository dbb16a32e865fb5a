/** The lab helpers every notebook imports: checks, data paths, and the disposal of a lab's leftovers. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import * as tf from "@tensorflow/tfjs";
import { initEngine, Linear } from "../src/index";
import { check, checkClose, checkShape, CheckError, maxAbsDiff } from "../src/lab/checks";
import { checkpointPath, dataPath, samplePath, WORLD_ENV, worldPath } from "../src/lab/paths";
import { LabScope, trackTensors } from "../src/lab/lab_scope";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();

beforeAll(async () => {
  await initEngine({ backend: "cpu", verbose: false });
});

let printed: string[];
beforeEach(() => {
  printed = [];
  vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void printed.push(args.join(" ")));
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe("check", () => {
  it("prints a passed check and returns", () => {
    check("rows sum to 1", true, "1.0000, 1.0000");
    expect(printed).toEqual(["✅ rows sum to 1: 1.0000, 1.0000"]);
  });

  it("prints a failed check and throws a CheckError naming the check and the detail", () => {
    let thrown: unknown;
    try {
      check("softmax matches", false, "max |difference| = 3.1e-1");
    } catch (error) {
      thrown = error;
    }
    expect(printed).toEqual(["❌ softmax matches: max |difference| = 3.1e-1"]);
    expect(thrown).toBeInstanceOf(CheckError);
    expect(thrown).toMatchObject({
      name: "CheckError",
      check: "softmax matches",
      message: "check failed: softmax matches: max |difference| = 3.1e-1",
    });
  });

  it("rejects a condition that is not a boolean (a forgotten await) instead of treating it as true", () => {
    const pending = Promise.resolve(true);
    expect(() => check("awaited?", pending as unknown as boolean, "x")).toThrow(
      /condition must be a boolean, got a Promise \(did you forget an await\?\)/,
    );
    expect(() => check("number", 1 as unknown as boolean, "x")).toThrow(/got number 1/);
    expect(printed).toEqual([]);
  });
});

describe("checkShape", () => {
  const t = tf.zeros([2, 3, 4]);
  afterAll(() => t.dispose());

  it("prints the shape with the dimension names", () => {
    checkShape("hidden", t, { B: 2, T: 3, D: 4 });
    checkShape("plain", t, [2, 3, 4]);
    checkShape("any T", t, { B: 2, T: null, D: 4 });
    expect(printed).toEqual(["✅ hidden shape: [B=2, T=3, D=4]", "✅ plain shape: [2, 3, 4]", "✅ any T shape: [B=2, T=3, D=4]"]);
  });

  it("names each wrong dimension", () => {
    expect(() => checkShape("hidden", t, { B: 2, T: 5, D: 8 })).toThrow(
      "check failed: hidden shape: got [2, 3, 4]: T is 3, expected 5; D is 4, expected 8",
    );
    expect(() => checkShape("plain", t, [2, 3, 5])).toThrow("got [2, 3, 4]: axis 2 is 4, expected 5");
  });

  it("names a wrong rank", () => {
    expect(() => checkShape("scores", t, { B: 2, H: 1, Tq: 3, Tk: 4 })).toThrow(
      "got [2, 3, 4] (rank 3), expected [B=2, H=1, Tq=3, Tk=4] (rank 4)",
    );
  });

  it("rejects a bad expectation or a non-tensor, quoting it", () => {
    expect(() => checkShape("x", t, { B: 2.5, T: 3, D: 4 })).toThrow(
      /size of B must be an integer ≥ 0 or null \(any size\), got number 2.5/,
    );
    expect(() => checkShape("x", [1, 2] as unknown as tf.Tensor, [2])).toThrow(/expected a tensor/);
  });
});

describe("maxAbsDiff", () => {
  it("gives the largest absolute difference, without leaking tensors", async () => {
    const a = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const b = tf.tensor2d([
      [1, 2.5],
      [1, 4],
    ]);
    const before = tf.memory().numTensors;
    expect(await maxAbsDiff(a, b)).toBe(2);
    expect(
      await maxAbsDiff(a, [
        [1, 2],
        [3, 4],
      ]),
    ).toBe(0);
    expect(await maxAbsDiff(5, 3)).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });

  it("is NaN when either side holds a NaN, 0 for matching infinities", async () => {
    expect(await maxAbsDiff([1, NaN], [1, 2])).toBeNaN();
    expect(await maxAbsDiff([1, 2], [1, NaN])).toBeNaN();
    expect(await maxAbsDiff([Infinity, -Infinity, 1], [Infinity, -Infinity, 1])).toBe(0);
    expect(await maxAbsDiff([Infinity], [1])).toBe(Infinity);
  });

  it("refuses to broadcast tensors of different shapes", async () => {
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([3]);
    const before = tf.memory().numTensors;
    await expect(maxAbsDiff(a, b)).rejects.toThrow("maxAbsDiff: the shapes differ: [2, 3] vs [3]");
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });

  it("refuses a disposed tensor and a non-numeric value", async () => {
    const gone = tf.zeros([2]);
    gone.dispose();
    await expect(maxAbsDiff(gone, [0, 0])).rejects.toThrow("maxAbsDiff: a is a disposed tensor (shape [2])");
    await expect(maxAbsDiff([0, 0], "0,0" as unknown as number)).rejects.toThrow(
      /b must be a tensor, a number or an array of numbers, got string "0,0"/,
    );
  });
});

describe("checkClose", () => {
  it("passes within atol + rtol·|expected| and reports the largest difference", async () => {
    const actual = tf.tensor1d([1.00001, 100.001, -3]);
    const before = tf.memory().numTensors;
    const report = await checkClose("close", actual, [1, 100, -3], { atol: 2e-5, rtol: 1e-5 });
    expect(report.mismatched).toBe(0);
    expect(report.total).toBe(3);
    expect(report.maxAbsDiff).toBeCloseTo(0.001, 5);
    expect(printed[0]).toMatch(/^✅ close: max \|difference\| = 9\.99e-4 \(atol 0\.00002, rtol 0\.00001\)$/);
    expect(tf.memory().numTensors).toBe(before);
    actual.dispose();
  });

  it("fails naming how many entries differ and the worst one by index", async () => {
    const actual = tf.tensor2d([
      [0, 1, 2],
      [3, 4, 9],
    ]);
    const expected = tf.tensor2d([
      [0, 1, 2],
      [3.5, 4, 5],
    ]);
    const before = tf.memory().numTensors;
    await expect(checkClose("logits", actual, expected, { atol: 0.1, rtol: 0 })).rejects.toThrow(
      "check failed: logits: 2 of 6 entries differ; worst at [1, 2]: 9 vs expected 5; max |difference| = 4 (atol 0.1, rtol 0)",
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([actual, expected]);
  });

  it("never passes a NaN; uses torch.testing's float32 tolerances by default", async () => {
    await expect(checkClose("nan", [1, NaN], [1, 1])).rejects.toThrow(/1 of 2 entries differ; worst at \[1\]: NaN vs expected 1/);
    await expect(checkClose("tight", [1 + 1e-4], [1])).rejects.toThrow(/atol 0.00001, rtol 0.0000013/);
    await expect(checkClose("tight", [1 + 5e-6], [1])).resolves.toMatchObject({ mismatched: 0 });
  });

  it("fails on different shapes and refuses bad tolerances", async () => {
    await expect(checkClose("shape", [1, 2, 3], [[1, 2, 3]])).rejects.toThrow(
      "check failed: shape shape: actual is [3], expected [1, 3]",
    );
    await expect(checkClose("t", [1], [1], { atol: -1 })).rejects.toThrow(
      'checkClose("t"): atol must be a finite number ≥ 0, got -1',
    );
  });
});

describe("data paths", () => {
  it("point into the project's data folder and exist", () => {
    expect(worldPath()).toBe(path.join(root, "data", "world"));
    expect(worldPath("scenes")).toBe(path.join(root, "data", "world", "scenes"));
    expect(samplePath("scene.png")).toBe(path.join(root, "data", "samples", "scene.png"));
    expect(checkpointPath("vision")).toBe(path.join(root, "data", "checkpoints", "vision"));
    expect(dataPath("samples", "chirp.wav")).toBe(path.join(root, "data", "samples", "chirp.wav"));
    for (const file of [worldPath("scenes"), samplePath("scene.png")]) expect(fs.existsSync(file)).toBe(true);
  });

  it("name what is missing and how to make it", () => {
    expect(() => worldPath("holograms")).toThrow(
      'worldPath("holograms"): data/world/holograms does not exist (`npm run data` generates the world)',
    );
    expect(() => samplePath("scene.jpg")).toThrow(
      /samplePath\("scene.jpg"\): data\/samples\/scene.jpg does not exist \(the samples are chirp.wav, scene.png\)/,
    );
    // A name no lab has (lab 05's storyteller, used here before, now exists), so the listing is what helps.
    expect(() => checkpointPath("holograms")).toThrow(
      /`npm run pretrain -- holograms` trains it; the checkpoints are .*storyteller.*vision/,
    );
    expect(() => worldPath("/etc")).toThrow('worldPath: "/etc" is absolute');
    expect(() => worldPath("")).toThrow('worldPath: each part must be a non-empty string, got ""');
  });

  it(`read another world when $${WORLD_ENV} names one`, () => {
    const other = scratch("mllm-labs-world-");
    fs.mkdirSync(path.join(other, "scenes"));
    const saved = process.env[WORLD_ENV];
    try {
      process.env[WORLD_ENV] = other;
      expect(worldPath("scenes")).toBe(path.join(other, "scenes"));
      expect(() => worldPath("videos")).toThrow(`$${WORLD_ENV} is ${other}`);
      process.env[WORLD_ENV] = path.join(other, "absent");
      expect(() => worldPath()).toThrow(`$${WORLD_ENV} names ${path.join(other, "absent")}, which does not exist`);
    } finally {
      if (saved === undefined) delete process.env[WORLD_ENV];
      else process.env[WORLD_ENV] = saved;
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it("are the same from the notebook's folder, the repository root, a data folder and outside the project (built library)", () => {
    const script =
      'const m = require(process.argv[1]); console.log(JSON.stringify([m.worldPath("scenes"), m.samplePath("scene.png")]));';
    const places: [string, string][] = [
      [path.join(root, "solutions"), "mllm-labs"], // how a notebook imports it: node_modules/mllm-labs → the project
      [root, "mllm-labs"],
      [path.join(root, "data", "world", "scenes"), "mllm-labs"],
      [os.tmpdir(), path.join(root, "dist", "src", "index.js")],
    ];
    for (const [cwd, target] of places) {
      const run = spawnSync(process.execPath, ["-e", script, target], {
        cwd,
        encoding: "utf8",
        env: { ...process.env, [WORLD_ENV]: "" },
      });
      expect(run.stderr, cwd).toBe("");
      expect(JSON.parse(run.stdout), cwd).toEqual([
        path.join(root, "data", "world", "scenes"),
        path.join(root, "data", "samples", "scene.png"),
      ]);
    }
  });
});

describe("LabScope", () => {
  it("disposes the tensors, kept tensors and variables created since it started, and only those", async () => {
    const earlier = tf.ones([3]);
    const start = tf.memory().numTensors;
    const lab = trackTensors("test lab");
    const plain = tf.zeros([4, 4]); // [4, 4] float32: 64 bytes
    const fromTidy = tf.tidy(() => plain.add(1).mul(2)); // the temporary is freed by tidy, the result recorded
    const kept = tf.tidy(() => tf.keep(tf.ones([2], "int32"))); // 8 bytes
    const layer = new Linear({ inFeatures: 3, outFeatures: 2, seed: 1 }); // two variables: [2, 3] and [2]
    const disposedEarly = tf.zeros([10]);
    disposedEarly.dispose();
    expect(lab.live()).toEqual({ tensors: 3, variables: 2, bytes: 64 + 64 + 8 + 24 + 8 });
    const leftovers = lab.close();
    expect(leftovers).toEqual({ tensors: 3, variables: 2, bytes: 64 + 64 + 8 + 24 + 8 });
    expect([plain, fromTidy, kept].every((t) => t.isDisposed)).toBe(true);
    expect(layer.namedParameters().every(([, p]) => p.isDisposed)).toBe(true);
    expect(tf.memory().numTensors).toBe(start);
    expect(lab.tensorsAtStart).toBe(start);
    expect(earlier.isDisposed).toBe(false);
    expect(lab.isClosed).toBe(true);
    expect(() => lab.close()).toThrow('LabScope "test lab" is already closed');
    earlier.dispose();
  });

  it("disposes tensors marked tf.keep inside a tidy (KV caches, optimizer slots), and restores tf.keep when the last scope closes", () => {
    const start = tf.memory().numTensors;
    const ownKeep = tf.engine().keep;
    const before = tf.tidy(() => tf.keep(tf.ones([2]))); // kept before the scope: not the lab's
    const lab = trackTensors("kv");
    const slot = tf.tidy(() => tf.keep(tf.zeros([3]).add(1)));
    tf.tidy(() => tf.keep(before)); // re-keeping an older tensor does not make it the lab's
    expect(lab.live().tensors).toBe(1);
    expect(lab.close().tensors).toBe(1);
    expect(slot.isDisposed).toBe(true);
    expect(before.isDisposed).toBe(false);
    expect(tf.engine().keep).toBe(ownKeep);
    expect(Object.prototype.hasOwnProperty.call(tf.engine(), "keep"), "the engine's own method is back").toBe(false);
    before.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it("keeps the tensors and modules it is told to keep, and hands kept tensors to the enclosing tidy", () => {
    const start = tf.memory().numTensors;
    const outer = tf.tidy(() => {
      const lab = new LabScope("inner");
      const result = tf.ones([2]).mul(3);
      const layer = new Linear({ inFeatures: 2, outFeatures: 2, bias: false, seed: 2 });
      tf.zeros([5]);
      const leftovers = lab.close([result, layer]);
      expect(leftovers.tensors).toBe(2); // the ones() and the zeros(); result kept
      expect(leftovers.variables).toBe(0);
      expect(result.isDisposed).toBe(false);
      expect(layer.namedParameters().every(([, p]) => !p.isDisposed)).toBe(true);
      layer.dispose();
      return result.sum(); // result itself is now recorded by this tidy, which frees it
    });
    expect(tf.memory().numTensors).toBe(start + 1);
    outer.dispose();
  });

  it("refuses to close inside tf.tidy or before a LabScope opened after it", () => {
    const start = tf.memory().numTensors;
    const outer = trackTensors("outer");
    const inner = trackTensors("inner");
    expect(() => outer.close()).toThrow(
      'LabScope "outer": close the inner LabScope "inner" first (it started later and is still open)',
    );
    expect(() => tf.tidy(() => inner.close())).toThrow(
      /LabScope "inner": close\(\) was called inside another scope .* call it at the top level of a cell/,
    );
    tf.zeros([1]);
    expect(inner.close().tensors).toBe(1);
    expect(outer.close().tensors).toBe(0);
    expect(tf.memory().numTensors).toBe(start);
  });

  it("records through the engine's active scope, and drops disposed tensors from that record in a long loop (tfjs canary)", () => {
    const lab = trackTensors("loop");
    const record = tf.engine().state.activeScope; // internal to tfjs-core: fails loudly if an upgrade moves it
    expect(record.name).toBe("LabScope(loop)");
    expect(Array.isArray(record.track)).toBe(true);
    const survivor = tf.scalar(1);
    for (let step = 0; step < 20_000; step++) tf.scalar(step).dispose();
    expect(record.track.length).toBeLessThan(2 * 4096 + 2);
    expect(record.track).toContain(survivor);
    expect(lab.live().tensors).toBe(1);
    expect(lab.close().tensors).toBe(1);
    expect(survivor.isDisposed).toBe(true);
  });
});
