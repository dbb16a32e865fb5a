/**
 * The object tracker (lab 03, docs/lab03-plan.md "Eleventh round"): its config's checks, its shapes, a loss that is
 * the cross-entropy of the right cell and the position error at that cell, a trajectory reader that does not move the
 * detector, a detector that learns to find an identity in synthetic frames, and the generator's tracks as targets by
 * identity.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  VideoObjectTracker,
  cellNeighbourhoods,
  resolveVideoObjectTrackerConfig,
  type IdentityTargets,
} from "../src/models/video_object_tracker";
import { patchNeighbourhoods } from "../src/models/llava";
import { maxDifference } from "./helpers/max_difference";
import { identityTargetArrays, trackIdentity, WORLD_MOTION_ATTRIBUTE_NAMES } from "../src/data/video_tracks";
import { sampleVideo } from "../src/data/video";
import { COLOR_NAMES, SHAPE_NAMES } from "../src/data/vocabulary";
import { AdamW } from "../src/train/adamw";
import { Random } from "../src/util/random";

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const F = 4; // frames
const GRID = 4; // a 4 × 4 patch grid: K = 17 tokens per frame
const D = 8; // token width
const CONFIG = { colors: 2, shapes: 3, frames: F, motionClasses: [4, 2], window: 3, hiddenSize: 16, trajectoryHiddenSize: 8 };
const I = 6; // identities: not F, so that frames and identities swapped would change a shape

function randomFeatures(batch: number, seed: number): tf.Tensor4D {
  return tf.randomNormal([batch, F, 1 + GRID * GRID, D], 0, 1, "float32", seed) as tf.Tensor4D;
}

/** One clip: identity 2 visible in frames 0–2 at (−0.6, 0.3), (−0.4, 0.3), (−0.2, 0.3), moving right (class 1), fast (1). */
function oneObjectTargets(): IdentityTargets {
  const visible = new Float32Array(I * F);
  const position = new Float32Array(I * F * 2);
  [0, 1, 2].forEach((f) => {
    visible[2 * F + f] = 1;
    position[(2 * F + f) * 2] = -0.6 + 0.2 * f;
    position[(2 * F + f) * 2 + 1] = 0.3;
  });
  const present = new Float32Array(I);
  present[2] = 1;
  return {
    visible: tf.tensor3d(visible, [1, I, F]),
    position: tf.tensor4d(position, [1, I, F, 2]),
    present: tf.tensor2d(present, [1, I]),
    motion: [0, 1].map(() =>
      tf.tensor2d(
        Array.from({ length: I }, (_, i) => (i === 2 ? 1 : 0)),
        [1, I],
        "int32",
      ),
    ),
  };
}
const disposeTargets = (t: IdentityTargets) => tf.dispose([t.visible, t.position, t.present, ...t.motion]);

describe("cellNeighbourhoods", () => {
  it("gives LLaVA's patchNeighbourhoods (zero padding, row-major neighbours), and the same gradient", async () => {
    const features = tf.randomNormal([3, 16, 5], 0, 1, "float32", 8);
    const weights = tf.randomNormal([16, 9 * 5], 0, 1, "float32", 9); // a loss that weighs every output differently
    for (const window of [1, 3]) {
      const ours = cellNeighbourhoods(features, window);
      const theirs = patchNeighbourhoods(features, window);
      expect(ours.shape).toEqual(theirs.shape);
      expect(await maxDifference(ours, theirs)).toBeLessThan(1e-6);
      tf.dispose([ours, ...(theirs === features ? [] : [theirs])]); // window 1: LLaVA's returns the features themselves
    }
    const gradient = (f: (x: tf.Tensor) => tf.Tensor) =>
      tf.grad((x: tf.Tensor) =>
        f(x)
          .mul(weights.slice([0, 0], [16, f(x).shape[2]!]))
          .sum(),
      )(features);
    const [a, b] = [gradient((x) => cellNeighbourhoods(x, 3)), gradient((x) => patchNeighbourhoods(x, 3))];
    expect(await maxDifference(a, b)).toBeLessThan(1e-5);
    expect(() => tf.tidy(() => void cellNeighbourhoods(features.reshape([3, 80]), 3))).toThrow(
      "must be [N, g·g, D] (a square grid), got [3,80]",
    );
    expect(() => cellNeighbourhoods(features, 2)).toThrow("window must be an odd integer ≥ 1, got 2");
    tf.dispose([a, b, features, weights]);
  });
});

describe("VideoObjectTracker", () => {
  it("fills its defaults and refuses a bad config, quoting the value", () => {
    expect(resolveVideoObjectTrackerConfig({})).toEqual({
      colors: 6,
      shapes: 5,
      frames: 12,
      motionClasses: [4, 2, 2, 2, 2],
      window: 3,
      hiddenSize: 256,
      trajectoryHiddenSize: 128,
    });
    expect(() => resolveVideoObjectTrackerConfig({ window: 2 })).toThrow("config.window must be an odd positive integer, got 2");
    expect(() => resolveVideoObjectTrackerConfig({ colors: 0 })).toThrow("config.colors must be a positive integer, got 0");
    expect(() => resolveVideoObjectTrackerConfig({ motionClasses: [4, 1] })).toThrow("got [4,1]");
  });

  it("gives every identity's visibility, position and motion, and leaks nothing", async () => {
    const tracker = new VideoObjectTracker(CONFIG, { visionWidth: D, seed: 1 });
    const features = randomFeatures(2, 3);
    const before = tf.memory().numTensors;
    const tracks = tracker.track(features);
    expect(tf.memory().numTensors).toBe(before + 6); // visibility, position, 2 motion attributes, the cells' outputs
    expect(tracks.visibility.shape).toEqual([2, I, F]);
    expect(tracks.position.shape).toEqual([2, I, F, 2]);
    expect(tracks.motion.map((m) => m.shape)).toEqual([
      [2, I, 4],
      [2, I, 2],
    ]);
    expect(tracks.cellLogProbabilities.shape).toEqual([2 * F, I, GRID * GRID + 1]);
    // Every identity's visibility and position in frame f of clip b come from row b·F + f of the cells' outputs: the
    // log-odds of being in some cell against "absent", and the cells' positions weighted by P(cell | seen).
    const G = GRID * GRID;
    const logP = (await tracks.cellLogProbabilities.array()) as number[][][];
    const cellAt = (await tracks.cellPositions.array()) as number[][][][];
    const visibility = (await tracks.visibility.array()) as number[][][];
    const position = (await tracks.position.array()) as number[][][][];
    for (const [b, i, f] of [
      [0, 0, 0],
      [1, 5, 2],
      [1, 2, 3],
    ]) {
      const row = logP[b * F + f][i];
      const seen = Math.log(row.slice(0, G).reduce((sum, v) => sum + Math.exp(v), 0));
      expect(visibility[b][i][f]).toBeCloseTo(seen - row[G], 4);
      const weights = row.slice(0, G).map((v) => Math.exp(v - seen));
      for (const axis of [0, 1])
        expect(position[b][i][f][axis]).toBeCloseTo(
          weights.reduce((sum, w, c) => sum + w * cellAt[b * F + f][i][c][axis], 0),
          4,
        );
    }
    // cell 6 of the 4 × 4 grid is column 2, row 1: centre (0.25, −0.25), offsets of at most 1.5 half-cells of 0.25
    const [x, y] = cellAt[3][4][6];
    expect(Math.abs(x - 0.25)).toBeLessThanOrEqual(1.5 / GRID + 1e-6);
    expect(Math.abs(y + 0.25)).toBeLessThanOrEqual(1.5 / GRID + 1e-6);
    // a position is an average of cell centres plus offsets: inside ±(1 − 1/g + 1.5/g) = ±1.125
    const positions = Array.from(await tracks.position.data());
    expect(Math.max(...positions.map(Math.abs))).toBeLessThanOrEqual(1 + 1.5 / GRID - 1 / GRID + 1e-6);
    tf.dispose([tracks.visibility, tracks.position, tracks.cellLogProbabilities, tracks.cellPositions, ...tracks.motion]);
    expect(tf.memory().numTensors).toBe(before);
    const refused = (make: () => tf.Tensor) => () => tf.tidy(() => void tracker.track(make()));
    expect(refused(() => features.reshape([2, F, 17 * D]))).toThrow("features must be [B, F, K, Dv], got [2,4,136]");
    expect(refused(() => features.slice([0, 0, 0, 0], [2, 3, -1, -1]))).toThrow(
      "clips of 3 frames for a tracker of config.frames 4",
    );
    expect(refused(() => features.slice([0, 0, 0, 0], [2, F, 16, D]))).toThrow("a square patch grid, got 16 tokens");
    expect(refused(() => features.slice([0, 0, 0, 0], [2, F, 17, 4]))).toThrow(
      "frame tokens 4 wide for a tracker of visionWidth 8",
    );
    expect(tf.memory().numTensors).toBe(before);
    features.dispose();
    tracker.dispose();
  });

  it("packs each frame's detections to travel with the frame, and reads them back as track() does", async () => {
    const tracker = new VideoObjectTracker(CONFIG, { visionWidth: D, seed: 2 });
    const features = randomFeatures(2, 8);
    const before = tf.memory().numTensors;
    const tracks = tracker.track(features);
    const packed = tracker.frameDetections(features);
    expect(packed.shape).toEqual([2, F, I, 3]); // [B, F, I, (visibility, x, y)]
    const read = tracker.readDetections(packed);
    expect(await maxDifference(read.visibility, tracks.visibility)).toBe(0);
    expect(await maxDifference(read.position, tracks.position)).toBe(0);
    for (const [k, logits] of read.motion.entries()) expect(await maxDifference(logits, tracks.motion[k])).toBe(0);
    // Identity 4 of clip 1 in frame 2: the packed row is its visibility and position.
    const row = (await packed.array())[1][2][4];
    const visibility = ((await tracks.visibility.array()) as number[][][])[1][4][2];
    const position = ((await tracks.position.array()) as number[][][][])[1][4][2];
    expect(row).toEqual([visibility, ...position]);
    // The likeliest identities by mean visibility, likeliest first.
    const meanVisibility = tf.tidy(() => tf.sigmoid(tracks.visibility).mean(2));
    const means = ((await meanVisibility.array()) as number[][]).map((clip) =>
      clip.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]),
    );
    meanVisibility.dispose();
    const chosen = tracker.likeliestIdentities(tracks.visibility, 2);
    expect(await chosen.array()).toEqual(means.map((clip) => [clip[0][1], clip[1][1]]));
    expect(() => tracker.likeliestIdentities(tracks.visibility, 7)).toThrow("slots must be an integer from 1 to 6, got 7");
    tf.dispose([packed, chosen, read.visibility, read.position, ...read.motion]);
    tf.dispose([tracks.visibility, tracks.position, tracks.cellLogProbabilities, tracks.cellPositions, ...tracks.motion]);
    expect(tf.memory().numTensors).toBe(before);
    features.dispose();
    tracker.dispose();
  });

  it("scores the cell that holds the centre (or absent), the position at that cell, and the present identity's motion", async () => {
    const tracker = new VideoObjectTracker(CONFIG, { visionWidth: D, seed: 2 });
    const features = randomFeatures(1, 4);
    const targets = oneObjectTargets();
    const tracks = tracker.track(features);
    const loss = tracker.loss(tracks, targets, 10);
    const logP = (await tracks.cellLogProbabilities.array()) as number[][][];
    const cells = (await tracks.cellPositions.array()) as number[][][][];
    const motion = (await Promise.all(tracks.motion.map((m) => m.array()))) as number[][][][];
    // frame f, identity 2 at x = −0.6 + 0.2 f, y = 0.3: column ⌊(x + 1) · 2⌋, row ⌊1.3 · 2⌋ = 2; frame 3 and the others: absent (cell 16)
    const cellOf = (f: number) => 2 * GRID + Math.floor((-0.6 + 0.2 * f + 1) * 2);
    let detection = 0;
    let squared = 0;
    for (let f = 0; f < F; f++)
      for (let i = 0; i < I; i++) {
        const seen = i === 2 && f < 3;
        detection -= logP[f][i][seen ? cellOf(f) : GRID * GRID];
        if (seen) {
          const [x, y] = cells[f][i][cellOf(f)];
          squared += (x - (-0.6 + 0.2 * f)) ** 2 + (y - 0.3) ** 2;
        }
      }
    const logSoftmax = (row: number[], k: number) => row[k] - Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    const motionLoss = -logSoftmax(motion[0][0][2], 1) - logSoftmax(motion[1][0][2], 1);
    const values = await Promise.all([loss.detection, loss.position, loss.motion, loss.total].map((t) => t.data()));
    expect(values[0][0]).toBeCloseTo(detection / F, 4);
    expect(values[1][0]).toBeCloseTo(squared / 3, 5);
    expect(values[2][0]).toBeCloseTo(motionLoss, 4);
    expect(values[3][0]).toBeCloseTo(detection / F + 10 * (squared / 3) + motionLoss, 3);
    const wrong = { ...targets, present: tf.zeros([2, I]) };
    expect(() => tracker.loss(tracks, wrong)).toThrow("targets.present must be [1,6], got [2,6]");
    tf.dispose([wrong.present, loss.total, loss.detection, loss.position, loss.motion, features]);
    tf.dispose([tracks.visibility, tracks.position, tracks.cellLogProbabilities, tracks.cellPositions, ...tracks.motion]);
    disposeTargets(targets);
    tracker.dispose();
  });

  it("reads trajectories without moving the detector: the motion loss's gradient reaches only the reader", async () => {
    const tracker = new VideoObjectTracker(CONFIG, { visionWidth: D, seed: 3 });
    const features = randomFeatures(1, 5);
    const targets = oneObjectTargets();
    const detector = [...tracker.cellHidden.trainableParameters(), ...tracker.absentLogits.trainableParameters()];
    const reader = tracker.trajectoryHidden.trainableParameters();
    const { value, grads } = tf.variableGrads(
      () => tracker.loss(tracker.track(features), targets).motion,
      [...detector, ...reader],
    );
    const largest = async (t: tf.Tensor) => {
      const top = tf.tidy(() => t.abs().max());
      const [v] = await top.data();
      top.dispose();
      return v;
    };
    for (const v of detector) expect(await largest(grads[v.name])).toBe(0);
    expect(await largest(grads[reader[0].name])).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    features.dispose();
    disposeTargets(targets);
    tracker.dispose();
  });

  it("learns to find an identity drawn as a token pattern in a cell, where a blind guess cannot", async () => {
    // Each clip shows identity k (of 4) in cell c of every frame: the cell's token is pattern k, the others noise.
    const random = new Random(9);
    const B = 8;
    const clip = () => ({ identity: random.int(0, I), cell: random.int(0, GRID * GRID) });
    const patterns = tf.randomNormal([I, D], 0, 3, "float32", 11);
    const batch = (clips: { identity: number; cell: number }[]) =>
      tf.tidy(() => {
        const noise = tf.randomNormal([clips.length, F, 1 + GRID * GRID, D], 0, 0.3, "float32", random.int(0, 1e6));
        const marks = tf.buffer([clips.length, F, 1 + GRID * GRID, I]);
        clips.forEach(({ identity, cell }, b) => {
          for (let f = 0; f < F; f++) marks.set(1, b, f, 1 + cell, identity);
        });
        return noise.add(marks.toTensor().reshape([-1, I]).matMul(patterns).reshape(noise.shape)) as tf.Tensor4D;
      });
    const targetsOf = (clips: { identity: number; cell: number }[]): IdentityTargets => {
      const visible = new Float32Array(clips.length * I * F);
      const position = new Float32Array(clips.length * I * F * 2);
      const present = new Float32Array(clips.length * I);
      clips.forEach(({ identity, cell }, b) => {
        present[b * I + identity] = 1;
        for (let f = 0; f < F; f++) {
          visible[(b * I + identity) * F + f] = 1;
          position[((b * I + identity) * F + f) * 2] = ((cell % GRID) + 0.5) / 2 - 1;
          position[((b * I + identity) * F + f) * 2 + 1] = (Math.floor(cell / GRID) + 0.5) / 2 - 1;
        }
      });
      const zeros = () => tf.zeros([clips.length, I], "int32");
      return {
        visible: tf.tensor3d(visible, [clips.length, I, F]),
        position: tf.tensor4d(position, [clips.length, I, F, 2]),
        present: tf.tensor2d(present, [clips.length, I]),
        motion: [zeros(), zeros()],
      };
    };
    const tracker = new VideoObjectTracker(CONFIG, { visionWidth: D, seed: 4 });
    const optimizer = new AdamW({ learningRate: 3e-3, weightDecay: 0 });
    const held = Array.from({ length: 16 }, clip);
    const heldFeatures = batch(held);
    const heldTargets = targetsOf(held);
    const detectionLoss = async () => {
      const tracks = tracker.track(heldFeatures);
      const loss = tracker.loss(tracks, heldTargets);
      const value = (await loss.detection.data())[0];
      tf.dispose([loss.total, loss.detection, loss.position, loss.motion, tracks.visibility, tracks.position]);
      tf.dispose([tracks.cellLogProbabilities, tracks.cellPositions, ...tracks.motion]);
      return value;
    };
    const start = await detectionLoss();
    for (let step = 0; step < 300; step++) {
      const clips = Array.from({ length: B }, clip);
      const features = batch(clips);
      const targets = targetsOf(clips);
      const loss = optimizer.minimize(() => tracker.loss(tracker.track(features), targets).total, tracker.trainableParameters());
      tf.dispose([loss, features]);
      disposeTargets(targets);
    }
    const end = await detectionLoss();
    // At the start every identity spreads over 17 outcomes (4 · ln 17 ≈ 11.3 per frame). A reader that knew which
    // identity is present but not where would still pay ln 16 ≈ 2.8 per frame.
    expect(start).toBeGreaterThan(8);
    expect(end).toBeLessThan(1);
    optimizer.dispose();
    tf.dispose([heldFeatures, patterns]);
    disposeTargets(heldTargets);
    tracker.dispose();
  });
});

describe("identityTargetArrays", () => {
  it("puts each generated object at its identity, with its frames, positions and motion classes", () => {
    const random = new Random(5);
    const clips = Array.from({ length: 20 }, () => sampleVideo(random, 12));
    const targets = identityTargetArrays(
      clips.map((c) => c.tracks),
      { frames: 12, canvas: 64 },
    );
    const I = COLOR_NAMES.length * SHAPE_NAMES.length;
    expect(targets.identities).toBe(I);
    expect(WORLD_MOTION_ATTRIBUTE_NAMES).toEqual(["direction", "speed", "bounces", "appears", "disappears"]);
    clips.forEach((clip, n) => {
      expect(targets.present.slice(n * I, (n + 1) * I).reduce((s, v) => s + v, 0)).toBe(clip.tracks.length);
      for (const track of clip.tracks) {
        const i = trackIdentity(track);
        expect(COLOR_NAMES[Math.floor(i / SHAPE_NAMES.length)]).toBe(track.object.color);
        expect(SHAPE_NAMES[i % SHAPE_NAMES.length]).toBe(track.object.shape);
        const j = n * I + i;
        expect(targets.motion[0][j]).toBe(["left", "right", "up", "down"].indexOf(track.direction));
        expect(targets.motion[3][j]).toBe(track.appearAt > 0 ? 1 : 0);
        for (let f = 0; f < 12; f++) {
          expect(targets.visible[j * 12 + f]).toBe(f >= track.appearAt && f < track.disappearAt ? 1 : 0);
          expect(targets.position[(j * 12 + f) * 2]).toBeCloseTo(track.positions[f][0] / 32 - 1, 5);
        }
      }
    });
  });

  it("refuses a clip without tracks, of the wrong length, or with one identity twice", () => {
    const clip = sampleVideo(new Random(6), 12);
    expect(() => identityTargetArrays([undefined], { frames: 12, canvas: 64 })).toThrow("clip 0 has no tracks");
    expect(() => identityTargetArrays([clip.tracks], { frames: 10, canvas: 64 })).toThrow("has 12 frames, expected 10");
    const twice = [clip.tracks[0], clip.tracks[0]];
    expect(() => identityTargetArrays([twice], { frames: 12, canvas: 64 })).toThrow(
      `clip 0 holds two ${clip.tracks[0].object.color} ${clip.tracks[0].object.shape}s`,
    );
  });
});
