/**
 * The object-map objective (src/pretrain/object_map.ts): its per-token targets on hand-placed objects, and its loss
 * against the binary cross-entropy computed by hand.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { ObjectMapHead, UNANNOTATED, checkObjectMapObjective, objectMapTargets } from "../src/pretrain/object_map";
import { PRESENCE_PAIRS } from "../src/pretrain/llava_presence";

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const pair = (name: string) => PRESENCE_PAIRS.indexOf(name);
const softplus = (z: number) => Math.log1p(Math.exp(z));

describe("object-map targets", () => {
  it("marks each object's pair in the cell that holds its centre, row-major, and nothing else", async () => {
    const images = [
      [
        { color: "red", shape: "circle", x: 10, y: 40 }, // column 0, row 2 of a 4×4 grid over 64 px → cell 8
        { color: "blue", shape: "square", x: 63, y: 0 }, // column 3, row 0 → cell 3
        { color: "green", shape: "star", x: 20, y: 47.9 }, // column 1, row 2 → cell 9
        { color: "red", shape: "square", x: 28, y: 44 }, // the same cell 9: both pairs marked
      ],
      [{ color: "yellow", shape: "triangle", x: 64, y: 64 }], // the far edge belongs to the last cell, 15
    ] as const;
    const targets = objectMapTargets(images, 4, 64);
    expect(targets.shape).toEqual([2, 16, PRESENCE_PAIRS.length]);
    const values = (await targets.array()) as number[][][];
    targets.dispose();
    const marked = values.flatMap((cells, image) =>
      cells.flatMap((row, cell) => row.flatMap((v, k) => (v === 1 ? [`${image}/${cell}/${PRESENCE_PAIRS[k]}`] : []))),
    );
    expect(marked.sort()).toEqual(
      ["0/8/red circle", "0/3/blue square", "0/9/green star", "0/9/red square", "1/15/yellow triangle"].sort(),
    );
    expect(values.flat(2).filter((v) => v !== 0 && v !== 1)).toEqual([]);
    // On an 8×8 grid the same circle falls in column 1, row 5.
    const fine = objectMapTargets([[images[0][0]]], 8, 64);
    expect((await fine.array())[0][5 * 8 + 1][pair("red circle")]).toBe(1);
    fine.dispose();
  });

  it("refuses an object without a position or outside the canvas, and a bad grid", () => {
    expect(() => objectMapTargets([[{ color: "red", shape: "circle" }]], 4, 64)).toThrow(
      /image 0 has a red circle at \(undefined, undefined\); expected a centre inside the 64×64 canvas/,
    );
    expect(() => objectMapTargets([[], [{ color: "red", shape: "circle", x: 70, y: 3 }]], 4, 64)).toThrow(
      /image 1 has a red circle at \(70, 3\)/,
    );
    expect(() => objectMapTargets([[]], 2.5, 64)).toThrow(/grid must be a positive integer, got 2.5/);
    expect(() => objectMapTargets([[{ color: "pink", shape: "circle", x: 1, y: 1 }] as never], 4, 64)).toThrow(
      /objectMapTargets: unknown object "pink circle"/,
    );
    expect(() => checkObjectMapObjective({ weight: 0 })).toThrow(/weight must be a positive number, got 0/);
  });
});

describe("object-map head", () => {
  it("the loss is the binary cross-entropy summed over the pairs and averaged over the tokens", async () => {
    const head = new ObjectMapHead(3, 7);
    const before = tf.memory().numTensors;
    const tokens = tf.tensor3d([
      [
        [1, -2, 0.5],
        [0, 0, 0],
      ],
      [
        [-1, 1, 2],
        [0.3, 0.2, -0.1],
      ],
    ]); // [Bimg 2, Nimg 2, D 3]
    // image 0's first token holds a red circle, image 1's second a blue star
    const hand = new Float32Array(2 * 2 * PRESENCE_PAIRS.length);
    hand[pair("red circle")] = 1;
    hand[3 * PRESENCE_PAIRS.length + pair("blue star")] = 1;
    const target = tf.tensor3d(hand, [2, 2, PRESENCE_PAIRS.length]);
    const logitsTensor = head.logits(tokens); // [2, 2, pairs]
    const logits = (await logitsTensor.array()) as number[][][];
    logitsTensor.dispose();
    const loss = head.loss(tokens, target);
    let sum = 0;
    logits
      .flat()
      .forEach((row, token) => row.forEach((z, k) => (sum += softplus(z) - hand[token * PRESENCE_PAIRS.length + k] * z)));
    expect(Math.abs((await loss.data())[0] - sum / 4)).toBeLessThan(1e-4);
    // With the read-out's bias at −5 and small weights, an empty token costs about 30·softplus(−5) = 0.20.
    expect(sum / 4).toBeGreaterThan(30 * softplus(-5));
    tf.dispose([tokens, target, loss]);
    expect(tf.memory().numTensors).toBe(before);
    // An unannotated image (a domain image among scenes) adds nothing: the loss is image 0's alone; none annotated → 0.
    const partly = objectMapTargets([[{ color: "red", shape: "circle", x: 1, y: 1 }], undefined], 1, 64); // [2, 1, pairs]
    expect((await partly.array())[1][0].every((v) => v === UNANNOTATED)).toBe(true);
    const oneTokenEach = tf.tensor3d([[[1, -2, 0.5]], [[-1, 1, 2]]]); // [Bimg 2, Nimg 1, D 3]
    const firstOnly = tf.tidy(() => oneTokenEach.slice([0, 0, 0], [1, 1, 3]));
    const firstTarget = tf.tidy(() => partly.slice([0, 0, 0], [1, 1, PRESENCE_PAIRS.length]));
    const [both, alone] = [head.loss(oneTokenEach, partly), head.loss(firstOnly, firstTarget)];
    expect(Math.abs((await both.data())[0] - (await alone.data())[0])).toBeLessThan(1e-6);
    const none = objectMapTargets([undefined, undefined], 1, 64);
    const zero = head.loss(oneTokenEach, none);
    expect((await zero.data())[0]).toBe(0);
    tf.dispose([partly, oneTokenEach, firstOnly, firstTarget, both, alone, none, zero]);
    expect(tf.memory().numTensors).toBe(before);
    const wrong = tf.zeros([2, 3, PRESENCE_PAIRS.length]);
    const twoTokens = tf.zeros([2, 2, 3]);
    expect(() => head.loss(twoTokens, wrong)).toThrow(/targets \[2,3,30\] do not match the tokens \[2,2,3\]/);
    const wide = tf.zeros([1, 2, 4]);
    expect(() => head.logits(wide)).toThrow(/tokens must be \[Bimg, Nimg, 3\], got \[1,2,4\]/);
    tf.dispose([wrong, twoTokens, wide]);
    head.dispose();
  });
});
