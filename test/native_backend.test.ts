/**
 * The native backend against tfjs's `cpu` backend: every native kernel on
 * random shapes (odd sizes, ranks 1–4, broadcasting on either side, all
 * transposes, int32 falling back), gradients, a 20-step training curve, the
 * buffer pool's safety, and no tensor leaks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { NativeBackend } from "../src/engine/native/backend";
import { Random } from "../src/index";
import { gptLossCurve } from "./helpers/gpt_curve";

beforeAll(async () => {
  const result = registerNativeBackend();
  expect(result.ok, result.ok ? "" : result.reason).toBe(true);
  await tf.setBackend("cpu");
});

/** Runs fn on cpu and on native with the same inputs (created by make), returns both outputs as arrays. */
async function onBoth(
  make: () => tf.Tensor[],
  fn: (...xs: tf.Tensor[]) => tf.Tensor,
): Promise<{ cpu: Float32Array | Int32Array; native: Float32Array | Int32Array; shape: number[]; nativeShape: number[] }> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const inputs = make();
    const out = fn(...inputs);
    const data = (await out.data()) as Float32Array;
    const shape = out.shape;
    tf.dispose([...inputs, out]);
    return { data, shape };
  };
  const cpu = await run("cpu");
  const native = await run("native");
  await tf.setBackend("cpu");
  return { cpu: cpu.data, native: native.data, shape: cpu.shape, nativeShape: native.shape };
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-5, atol = 1e-5) {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const bad = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (Number.isNaN(a[i]) !== Number.isNaN(b[i])) throw new Error(`NaN mismatch at ${i}: ${a[i]} vs ${b[i]}`);
    if (bad > worst) worst = bad;
  }
  expect(worst).toBe(0);
}

const random = new Random(7);
const normal =
  (shape: number[], seed = random.nextSeed()) =>
  () =>
    tf.randomNormal(shape, 0, 1, "float32", seed);

describe("native kernels match cpu", () => {
  const matmulCases: [number[], number[], boolean, boolean][] = [
    [[1, 1], [1, 1], false, false],
    [[7, 19], [19, 5], false, false],
    [[19, 7], [19, 5], true, false],
    [[7, 19], [5, 19], false, true],
    [[19, 7], [5, 19], true, true],
    [[37, 300], [300, 53], false, false],
    [[3, 6, 17], [3, 17, 33], false, false],
    [[3, 17, 6], [3, 33, 17], true, true],
    [[2, 3, 9, 8], [2, 3, 8, 4], false, false],
    [[4, 9, 8], [8, 5], false, false], // rank-3 × rank-2: b broadcast
    [[9, 8], [4, 8, 5], false, false], // a broadcast
    [[2, 1, 5, 6], [1, 3, 6, 7], false, false], // both broadcast their batch (tfjs cpu's trap)
  ];
  for (const [aShape, bShape, ta, tb] of matmulCases) {
    it(`matMul [${aShape}]${ta ? "ᵀ" : ""} · [${bShape}]${tb ? "ᵀ" : ""}`, async () => {
      const seedA = random.nextSeed();
      const seedB = random.nextSeed();
      const r = await onBoth(
        () => [normal(aShape, seedA)(), normal(bShape, seedB)()],
        (a, b) => tf.matMul(a, b, ta, tb),
      );
      if (r.shape.length === r.nativeShape.length && r.cpu.length === r.native.length) {
        expect(r.nativeShape).toEqual(r.shape);
        expectClose(r.native, r.cpu, 1e-4, 1e-4);
      } else {
        // tfjs's cpu kernel returns a wrong-size output when both batches broadcast: check the shape by hand.
        expect(r.nativeShape).toEqual([2, 3, 5, 7]);
      }
    });
  }

  it("fused matMul with bias and relu", async () => {
    const seeds = [random.nextSeed(), random.nextSeed(), random.nextSeed()];
    const r = await onBoth(
      () => [normal([13, 21], seeds[0])(), normal([21, 11], seeds[1])(), normal([11], seeds[2])()],
      (a, b, bias) => tf.fused.matMul({ a, b, bias, activation: "relu" }),
    );
    expectClose(r.native, r.cpu, 1e-4, 1e-4);
  });

  const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ["add", tf.add],
    ["sub", tf.sub],
    ["mul", tf.mul],
    ["div", tf.div],
    ["maximum", tf.maximum],
    ["minimum", tf.minimum],
    ["squaredDifference", tf.squaredDifference],
  ];
  const broadcastCases: [number[], number[]][] = [
    [
      [5, 7],
      [5, 7],
    ],
    [[5, 7], [7]],
    [[7], [5, 7]],
    [
      [3, 1, 7],
      [4, 1],
    ],
    [[1], [2, 3, 4]],
    [
      [2, 3, 4, 5],
      [3, 1, 5],
    ],
    [
      [65, 517],
      [65, 517],
    ], // large enough to run threaded
  ];
  for (const [name, op] of binaryOps) {
    it(`${name} with broadcasting on either side`, async () => {
      for (const [aShape, bShape] of broadcastCases) {
        const seeds = [random.nextSeed(), random.nextSeed()];
        const r = await onBoth(() => [normal(aShape, seeds[0])(), normal(bShape, seeds[1])()], op);
        expect(r.nativeShape).toEqual(r.shape);
        expectClose(r.native, r.cpu);
      }
    });
  }

  it("pow, and int32 inputs fall back to cpu", async () => {
    const r = await onBoth(
      () => [tf.randomUniform([4, 5], 0.5, 2, "float32", 3), tf.randomUniform([5], -2, 2, "float32", 4)],
      tf.pow,
    );
    expectClose(r.native, r.cpu);
    const ints = await onBoth(
      () => [
        tf.tensor2d(
          [
            [1, 2],
            [3, 4],
          ],
          undefined,
          "int32",
        ),
        tf.tensor1d([10, 20], "int32"),
      ],
      tf.add,
    );
    expect(Array.from(ints.native)).toEqual([11, 22, 13, 24]);
  });

  const unaryOps: [string, (x: tf.Tensor) => tf.Tensor, () => tf.Tensor][] = [
    ["exp", tf.exp, normal([9, 13])],
    ["log", tf.log, () => tf.randomUniform([9, 13], 0.01, 5, "float32", 5)],
    ["sqrt", tf.sqrt, () => tf.randomUniform([9, 13], 0, 5, "float32", 6)],
    ["rsqrt", tf.rsqrt, () => tf.randomUniform([9, 13], 0.1, 5, "float32", 7)],
    ["tanh", tf.tanh, normal([9, 13])],
    ["sigmoid", tf.sigmoid, normal([9, 13])],
    ["relu", tf.relu, normal([9, 13])],
    ["neg", tf.neg, normal([9, 13])],
    ["abs", tf.abs, normal([9, 13])],
    ["square", tf.square, normal([9, 13])],
    ["reciprocal", tf.reciprocal, () => tf.randomUniform([9, 13], 0.5, 3, "float32", 8)],
  ];
  for (const [name, op, make] of unaryOps) {
    it(`${name}`, async () => {
      const r = await onBoth(() => [make()], op);
      expectClose(r.native, r.cpu, 2e-6, 1e-6);
    });
  }

  it("softmax over the last axis, and over another axis (cpu fallback)", async () => {
    const first = random.nextSeed();
    const r = await onBoth(
      () => [normal([3, 4, 17], first)()],
      (x) => tf.softmax(x),
    );
    expectClose(r.native, r.cpu);
    const seed = random.nextSeed();
    const other = await onBoth(
      () => [normal([3, 4, 17], seed)()],
      (x) => tf.softmax(x.transpose([0, 2, 1])).transpose([0, 2, 1]),
    );
    expectClose(other.native, other.cpu);
  });

  const reductions: [string, (x: tf.Tensor, axis?: number | number[], keepDims?: boolean) => tf.Tensor][] = [
    ["sum", tf.sum],
    ["mean", tf.mean],
    ["max", tf.max],
    ["min", tf.min],
  ];
  for (const [name, op] of reductions) {
    it(`${name} over inner, outer, several and all axes, with keepDims`, async () => {
      for (const [axis, keepDims] of [
        [-1, false],
        [0, false],
        [[0, 2], true],
        [undefined, false],
        [1, true],
      ] as [number | number[] | undefined, boolean][]) {
        const seed = random.nextSeed();
        const r = await onBoth(
          () => [normal([3, 5, 7], seed)()],
          (x) => op(x, axis, keepDims),
        );
        expect(r.nativeShape).toEqual(r.shape);
        expectClose(r.native, r.cpu, 1e-5, 1e-5);
      }
      // Tall inputs take the row-block path for sums over rows (bias gradients), with odd column counts.
      for (const shape of [
        [600, 37],
        [4096, 3],
      ]) {
        const seed = random.nextSeed();
        const r = await onBoth(
          () => [normal(shape, seed)()],
          (x) => op(x, 0),
        );
        expect(r.nativeShape).toEqual(r.shape);
        expectClose(r.native, r.cpu, 1e-4, 1e-4);
      }
    });
  }

  it("reads float32 tensors that a cpu kernel stored in another typed array (cast from bool)", async () => {
    const r = await onBoth(
      () => [
        tf.tensor2d([
          [1, 5, 3],
          [4, 2, 6],
        ]),
      ],
      (x) => x.greater(2.5).toFloat().sum(),
    );
    expect(Array.from(r.native)).toEqual([4]);
    expect(Array.from(r.cpu)).toEqual([4]);
  });

  it("slice, split and concat on every axis, copying rather than viewing", async () => {
    const seed = random.nextSeed();
    const x = () => normal([4, 5, 6], seed)();
    for (const [begin, sizes] of [
      [
        [1, 0, 2],
        [2, 5, 3],
      ],
      [
        [0, 2, 0],
        [-1, 2, -1],
      ],
      [
        [3, 4, 5],
        [1, 1, 1],
      ],
      [
        [0, 0, 0],
        [4, 5, 6],
      ],
    ] as [number[], number[]][]) {
      const r = await onBoth(
        () => [x()],
        (t) => tf.slice(t, begin, sizes),
      );
      expect(r.nativeShape).toEqual(r.shape);
      expect(Array.from(r.native)).toEqual(Array.from(r.cpu));
    }
    for (const axis of [0, 1, 2]) {
      const r = await onBoth(
        () => [x()],
        (t) => tf.concat(tf.split(t, axis === 1 ? [2, 3] : 2, axis).reverse(), axis),
      );
      expect(r.nativeShape).toEqual(r.shape);
      expect(Array.from(r.native)).toEqual(Array.from(r.cpu));
    }
    const ones = await onBoth(
      () => [tf.ones([2, 3]), tf.zeros([2, 1]), tf.fill([2, 2], 7)],
      (a, b, c) => tf.concat([a, b, c], 1),
    );
    expect(Array.from(ones.native)).toEqual([1, 1, 1, 0, 7, 7, 1, 1, 1, 0, 7, 7]);
  });

  it("pad with a constant on every axis, ranks 1 to 4, and the gradient of slice (which pads)", async () => {
    const cases: [number[], [number, number][], number][] = [
      [[5], [[2, 3]], 0],
      [
        [4, 6],
        [
          [0, 1],
          [2, 0],
        ],
        -1.5,
      ],
      [
        [2, 3, 4],
        [
          [1, 1],
          [0, 0],
          [3, 2],
        ],
        0,
      ],
      [
        [3, 8, 8, 5],
        [
          [0, 0],
          [1, 2],
          [1, 2],
          [0, 0],
        ],
        0,
      ], // LLaVA's patch neighbourhoods, the strided kind
      [
        [2, 1, 3],
        [
          [0, 0],
          [0, 0],
          [0, 0],
        ],
        4,
      ], // no padding: a copy
    ];
    for (const [shape, paddings, constant] of cases) {
      const make = normal(shape); // one seed for both backends
      const r = await onBoth(
        () => [make()],
        (t) => tf.pad(t, paddings, constant),
      );
      expect(r.nativeShape).toEqual(r.shape);
      expect(Array.from(r.native)).toEqual(Array.from(r.cpu));
    }
    const sliced = normal([3, 7, 5]);
    const gradient = await onBoth(
      () => [sliced()],
      (t) => tf.grad((u: tf.Tensor) => u.slice([1, 2, 0], [2, 4, 3]).square().sum())(t),
    );
    expect(Array.from(gradient.native)).toEqual(Array.from(gradient.cpu));
    // int32 goes to the cpu kernel
    const ints = await onBoth(
      () => [tf.tensor1d([1, 2], "int32")],
      (t) => tf.pad(t, [[1, 0]], 9),
    );
    expect(Array.from(ints.native)).toEqual([9, 1, 2]);
  });

  it("tile on every axis, ranks 1 to 4, and its gradient", async () => {
    const cases: [number[], number[]][] = [
      [[5], [3]],
      [
        [7, 1],
        [1, 6],
      ], // rows of one element (the image-token merge's mask)
      [
        [4, 1, 6],
        [1, 2, 1],
      ], // grouped-query attention's repeat_kv
      [
        [2, 3, 4],
        [2, 1, 3],
      ],
      [
        [2, 3, 2, 5],
        [1, 2, 2, 1],
      ],
      [
        [3, 2],
        [1, 1],
      ], // a copy
    ];
    for (const [shape, reps] of cases) {
      const make = normal(shape); // one seed for both backends
      const r = await onBoth(
        () => [make()],
        (t) => tf.tile(t, reps),
      );
      expect(r.nativeShape).toEqual(r.shape);
      expect(Array.from(r.native)).toEqual(Array.from(r.cpu));
    }
    const tiled = normal([2, 3, 4]);
    const gradient = await onBoth(
      () => [tiled()],
      (t) => tf.grad((u: tf.Tensor) => u.tile([1, 2, 3]).square().sum())(t),
    );
    expectClose(gradient.native, gradient.cpu);
    // int32 and bool (the image-token merge tiles a comparison's mask) are copied with their own type
    const ints = await onBoth(
      () => [tf.tensor2d([1, 2, 3, 4], [2, 2], "int32")],
      (t) => tf.tile(t, [2, 2]),
    );
    expect(Array.from(ints.native)).toEqual([1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4]);
    const masks = await onBoth(
      () => [tf.tensor1d([3, 7, 3], "int32")],
      (t) => {
        const tiled = t.equal(3).reshape([3, 1]).tile([1, 4]);
        expect(tiled.dtype).toBe("bool");
        return tf.where(tiled, tf.onesLike(tiled.toFloat()), tf.zerosLike(tiled.toFloat()));
      },
    );
    expect(Array.from(masks.native)).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(Array.from(masks.native)).toEqual(Array.from(masks.cpu));
  });

  it("transpose of ranks 2 to 4", async () => {
    for (const [shape, perm] of [
      [
        [5, 7],
        [1, 0],
      ],
      [
        [2, 3, 4],
        [2, 0, 1],
      ],
      [
        [2, 3, 4, 5],
        [0, 2, 1, 3],
      ],
      [
        [2, 3, 4, 5],
        [3, 2, 1, 0],
      ],
    ] as [number[], number[]][]) {
      const seed = random.nextSeed();
      const r = await onBoth(
        () => [normal(shape, seed)()],
        (x) => tf.transpose(x, perm),
      );
      expect(r.nativeShape).toEqual(r.shape);
      expect(Array.from(r.native)).toEqual(Array.from(r.cpu));
    }
  });

  it("gather on axes 0 and 1 with repeated indices, and rejects an index out of range", async () => {
    for (const axis of [0, 1]) {
      const seed = random.nextSeed();
      const r = await onBoth(
        () => [
          normal([6, 5, 3], seed)(),
          tf.tensor2d(
            [
              [0, 4],
              [4, 2],
            ],
            undefined,
            "int32",
          ),
        ],
        (x, i) => tf.gather(x, i, axis),
      );
      expect(r.nativeShape).toEqual(r.shape);
      expect(Array.from(r.native)).toEqual(Array.from(r.cpu));
    }
    await tf.setBackend("native");
    const x = tf.zeros([3, 2]);
    const bad = tf.tensor1d([5], "int32");
    expect(() => tf.gather(x, bad)).toThrow(/index value 5 is not in \[0, 2\]/);
    tf.dispose([x, bad]);
    await tf.setBackend("cpu");
  });

  it("unsortedSegmentSum, and the gradient through gather (embedding backward)", async () => {
    const seed = random.nextSeed();
    const r = await onBoth(
      () => [normal([7, 4], seed)(), tf.tensor1d([0, 2, 2, 1, 0, 4, 2], "int32")],
      (x, ids) => tf.unsortedSegmentSum(x, ids, 5),
    );
    expectClose(r.native, r.cpu);
    const g = await onBoth(
      () => [normal([6, 3], seed)(), tf.tensor1d([1, 1, 5, 0], "int32")],
      (table, ids) => tf.grad((t: tf.Tensor) => tf.gather(t, ids).square().sum())(table),
    );
    expectClose(g.native, g.cpu);
  });
});

describe("GEMM micro-kernels", () => {
  /** Runs products in a child process with MLLM_GEMM_KERNEL set; returns the kernel it used and the products on native and cpu. */
  function productsWith(kernel: string): { kernel: string; native: number[]; cpu: number[] } {
    const { spawnSync } = require("child_process");
    const script = `
      const tf = require("@tensorflow/tfjs");
      const { registerNativeBackend } = require("./dist/src/engine/native/register.js");
      (async () => {
        const info = registerNativeBackend();
        const results = {};
        for (const backend of ["native", "cpu"]) {
          await tf.setBackend(backend);
          // Odd sizes leave edge tiles for every tile shape (6×16, 12×32), and K > 256 spans two packed blocks.
          const a = tf.randomNormal([3, 37, 300], 0, 1, "float32", 1);
          const b = tf.randomNormal([3, 45, 300], 0, 1, "float32", 2);
          const c = tf.randomNormal([300, 70], 0, 1, "float32", 3);
          const big = tf.randomNormal([130, 300], 0, 1, "float32", 4);
          results[backend] = [...(await tf.matMul(a, b, false, true).data()), ...(await tf.matMul(big, c).data()), ...(await tf.matMul(c, big, true, true).data())];
        }
        console.log(JSON.stringify({ kernel: info.gemmKernel, native: results.native, cpu: results.cpu }));
      })();`;
    const result = spawnSync(process.execPath, ["-e", script], {
      cwd: require("path").join(__dirname, ".."),
      encoding: "utf8",
      env: { ...process.env, MLLM_GEMM_KERNEL: kernel },
      maxBuffer: 64 << 20,
    });
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout.trim().split("\n").pop());
  }
  const cpuFlags = require("fs").existsSync("/proc/cpuinfo") ? require("fs").readFileSync("/proc/cpuinfo", "utf8") : "";
  const has = (flag: string) => new RegExp(`\\b${flag}\\b`).test(cpuFlags);

  it("portable (forced with MLLM_GEMM_KERNEL=portable) gives the cpu backend's products", () => {
    const { kernel, native, cpu } = productsWith("portable");
    expect(kernel).toBe("portable");
    expectClose(native, cpu, 1e-4, 1e-4);
  });

  it("avx2 and avx512 give the cpu backend's products, and each other's bit for bit (the same FMAs in the same order)", () => {
    const results: Record<string, number[]> = {};
    for (const wanted of [has("avx2") && has("fma") ? "avx2" : "", has("avx512f") ? "avx512" : ""].filter(Boolean)) {
      const { kernel, native, cpu } = productsWith(wanted);
      expect(kernel).toBe(wanted === "avx2" ? "avx2-fma" : "avx512f");
      expectClose(native, cpu, 1e-4, 1e-4);
      results[wanted] = native;
    }
    if (results.avx2 && results.avx512) expect(results.avx512.every((v, i) => Object.is(v, results.avx2[i]))).toBe(true);
    // The default is the widest the CPU has.
    expect(productsWith("").kernel).toBe(has("avx512f") ? "avx512f" : has("avx2") && has("fma") ? "avx2-fma" : "portable");
  }, 60_000);
});

describe("thread count", () => {
  it("sums over rows, LayerNorm gradients and products give the same bits with 1 and 2 threads", () => {
    const { spawnSync } = require("child_process");
    const script = `
      const tf = require("@tensorflow/tfjs");
      const { registerNativeBackend } = require("./dist/src/engine/native/register.js");
      const { layerNorm } = require("./dist/src/kernels/layer_norm/index.js");
      (async () => {
        registerNativeBackend();
        await tf.setBackend("native");
        const x = tf.randomNormal([1000, 72], 0, 1, "float32", 1);
        const gamma = tf.randomNormal([72], 1, 0.1, "float32", 2), beta = tf.zeros([72]);
        const grads = tf.grads((a, g, b) => layerNorm(a, g, b, 1e-5).mul(x).sum())([x, gamma, beta]);
        const parts = [x.sum(0), x.mean(0), ...grads, tf.matMul(x, x, true, false)];
        const hash = require("crypto").createHash("sha256");
        for (const t of parts) hash.update(Buffer.from((await t.data()).buffer));
        console.log(hash.digest("hex"));
      })();`;
    const digests = ["1", "2"].map((threads) => {
      const result = spawnSync(process.execPath, ["-e", script], {
        cwd: require("path").join(__dirname, ".."),
        encoding: "utf8",
        env: { ...process.env, MLLM_THREADS: threads },
      });
      expect(result.status, result.stderr).toBe(0);
      return result.stdout.trim().split("\n").pop();
    });
    expect(digests[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(digests[1]).toBe(digests[0]);
  }, 30_000);
});

describe("native backend end to end", () => {
  it("gradients of a small network equal cpu's", async () => {
    const seeds = [random.nextSeed(), random.nextSeed()];
    const r = await onBoth(
      () => [normal([4, 6, 8], seeds[0])(), normal([8, 8], seeds[1])()],
      (x, w) => {
        const grads = tf.grads((input: tf.Tensor, weight: tf.Tensor) =>
          tf.softmax(tf.matMul(input.reshape([24, 8]), weight).tanh()).mean(),
        )([x, w]);
        return tf.concat([grads[0].reshape([-1]), grads[1].reshape([-1])]);
      },
    );
    expectClose(r.native, r.cpu, 1e-4, 1e-7);
  });

  it("gives the same 20-step GPT loss curve as cpu, without leaking tensors", async () => {
    const cpu = await gptLossCurve("cpu", "tfjs-adam");
    const native = await gptLossCurve("native", "tfjs-adam");
    await tf.setBackend("cpu");
    expect(native[19]).toBeLessThan(native[0]);
    expectClose(native, cpu, 1e-4, 1e-5);
  });

  it("never hands out pooled memory that a tensor or a reader still holds", async () => {
    await tf.setBackend("native");
    const backend = tf.backend() as NativeBackend;
    const big = 64 * 1024; // above the pool's minimum
    const a = tf.fill([big], 1);
    const b = tf.fill([big], 2);
    const sum = tf.add(a, b); // pooled output
    const [view, rest] = tf.unstack(sum.reshape([2, big / 2])); // tfjs's cpu Unpack returns views of sum's memory
    const read = await sum.data(); // a copy, not the pooled buffer
    sum.dispose();
    const other = tf.mul(a, b); // may reuse a released buffer: must not be sum's, which the view still uses
    expect((await view.data())[0]).toBe(3);
    expect(read[0]).toBe(3);
    tf.dispose([a, b, view, rest, other]);
    const reused = tf.add(tf.fill([big], 5), tf.fill([big], 5));
    expect((await reused.data())[0]).toBe(10);
    expect(read[0]).toBe(3);
    reused.dispose();
    expect(backend.pool.hits).toBeGreaterThan(0);
    expect(backend.pooledBuffersInUse).toBe(0);
    await tf.setBackend("cpu");
  });
});

describe("fused ops", () => {
  it("scaled masked softmax and its gradient: the native kernels equal the composite in tfjs ops", async () => {
    const { scaledMaskedSoftmax, scaledMaskedSoftmaxComposite } = await import("../src/kernels/masked_softmax");
    const { causalMask } = await import("../src/nn/attention");
    await tf.setBackend("native");
    const x = tf.randomNormal([2, 3, 6, 6], 0, 2, "float32", 31);
    const upstream = tf.randomNormal([2, 3, 6, 6], 0, 1, "float32", 32);
    const mask = causalMask(6);
    for (const m of [mask, undefined]) {
      const run = (f: typeof scaledMaskedSoftmax) => [
        f(x, 0.35, m),
        tf.grad((a: tf.Tensor) => f(a, 0.35, m).mul(upstream).sum())(x),
      ];
      const fused = run(scaledMaskedSoftmax);
      const composite = run(scaledMaskedSoftmaxComposite);
      for (let i = 0; i < 2; i++) expectClose(await fused[i].data(), await composite[i].data(), 1e-5, 1e-6);
      tf.dispose([...fused, ...composite]);
    }
    tf.dispose([x, upstream, mask]);
    await tf.setBackend("cpu");
  });

  it("rmsNorm and its gradients: the native kernels equal the composite in tfjs ops", async () => {
    const { rmsNorm, rmsNormComposite } = await import("../src/kernels/rms_norm");
    await tf.setBackend("native");
    const x = tf.randomNormal([3, 4, 20], 0.5, 2, "float32", 21);
    const weight = tf.randomNormal([20], 1, 0.3, "float32", 22);
    const upstream = tf.randomNormal([3, 4, 20], 0, 1, "float32", 23);
    const run = (f: typeof rmsNorm) => [
      f(x, weight, 1e-6),
      ...tf.grads((a: tf.Tensor, w: tf.Tensor) => f(a, w, 1e-6).mul(upstream).sum())([x, weight]),
    ];
    const fused = run(rmsNorm);
    const composite = run(rmsNormComposite);
    for (let i = 0; i < 3; i++) expectClose(await fused[i].data(), await composite[i].data(), 1e-4, 1e-5);
    tf.dispose([x, weight, upstream, ...fused, ...composite]);
    await tf.setBackend("cpu");
  });

  it("gelu and its gradient: the native kernel equals the composite in tfjs ops", async () => {
    const { gelu, geluComposite } = await import("../src/kernels/gelu");
    await tf.setBackend("native");
    const x = tf.randomNormal([7, 33], 0, 2, "float32", 11);
    const [y1, g1] = [gelu(x), tf.grad((v: tf.Tensor) => gelu(v).sum())(x)];
    const [y2, g2] = [geluComposite(x), tf.grad((v: tf.Tensor) => geluComposite(v).sum())(x)];
    expectClose(await y1.data(), await y2.data(), 1e-5, 1e-6);
    expectClose(await g1.data(), await g2.data(), 1e-5, 1e-6);
    tf.dispose([x, y1, g1, y2, g2]);
    await tf.setBackend("cpu");
  });

  it("layerNorm and its gradients: the native kernels equal the composite in tfjs ops", async () => {
    const { layerNorm, layerNormComposite } = await import("../src/kernels/layer_norm");
    await tf.setBackend("native");
    // D = 24 and 40 leave a tail after the 16-lane sums; 700 rows take the row-block path for gamma and beta.
    for (const shape of [
      [2, 5, 24],
      [7, 100, 40],
    ]) {
      const D = shape[shape.length - 1];
      const x = tf.randomNormal(shape, 1, 3, "float32", 12);
      const gamma = tf.randomNormal([D], 1, 0.2, "float32", 13);
      const beta = tf.randomNormal([D], 0, 0.2, "float32", 14);
      const weights = tf.randomNormal(shape, 0, 1, "float32", 15); // a non-uniform upstream gradient
      const run = (f: typeof layerNorm) => {
        const y = f(x, gamma, beta, 1e-5);
        const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(a, g, b, 1e-5).mul(weights).sum())([
          x,
          gamma,
          beta,
        ]);
        return [y, ...grads];
      };
      const fused = run(layerNorm);
      const composite = run(layerNormComposite);
      for (let i = 0; i < 4; i++) expectClose(await fused[i].data(), await composite[i].data(), 1e-4, 1e-4);
      tf.dispose([x, gamma, beta, weights, ...fused, ...composite]);
    }
    const x = tf.ones([2, 24]);
    const beta = tf.zeros([24]);
    expect(() => layerNorm(x, tf.ones([3]), beta)).toThrow(/gamma \[3\] and beta \[24\] must be \[24\]/);
    tf.dispose([x, beta]);
    await tf.setBackend("cpu");
  });
});

describe("AdamW", () => {
  it("takes the textbook step (decoupled weight decay) on native (fused) and cpu (composite)", async () => {
    const { AdamW } = await import("../src/train/adamw");
    for (const backend of ["native", "cpu"]) {
      await tf.setBackend(backend);
      const p = tf.variable(tf.tensor1d([1.0, -2.0]));
      const optimizer = new AdamW({ learningRate: 0.1, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.5 });
      const grads = [tf.tensor1d([0.5, 0.25]), tf.tensor1d([-1.0, 0.5])];
      const want = [1.0, -2.0];
      const m = [0, 0];
      const v = [0, 0];
      for (const [t, g] of grads.entries()) {
        optimizer.applyGradients(new Map([[p, g]]));
        const gv = await g.data();
        for (let i = 0; i < 2; i++) {
          m[i] = 0.9 * m[i] + 0.1 * gv[i];
          v[i] = 0.99 * v[i] + 0.01 * gv[i] * gv[i];
          const mhat = m[i] / (1 - 0.9 ** (t + 1));
          const vhat = v[i] / (1 - 0.99 ** (t + 1));
          want[i] -= 0.1 * (mhat / (Math.sqrt(vhat) + 1e-8) + 0.5 * want[i]);
        }
      }
      expectClose(await p.data(), want, 1e-6, 1e-6);
      expect(optimizer.iterations).toBe(2);
      optimizer.dispose();
      tf.dispose([p, ...grads]);
    }
    await tf.setBackend("cpu");
  });
});
