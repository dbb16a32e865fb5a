/**
 * An object tracker on the frozen frame features: tracking by detection, one detector per object identity.
 *
 * Every cell of a frame's pooled patch grid reads its window × window neighbourhood of the frozen tower's tokens and
 * says, for each identity I (a colour–shape pair: the world's 6 × 5), whether that object's centre lies in the cell
 * and where in the cell (a sub-cell offset), as CenterNet's per-class centre heatmap and offset do; the frame's class
 * token gives each identity's "absent" logit. A softmax over the cells and "absent" gives, per frame and identity, the
 * probability that the object is visible and its expected position. A small MLP then reads each identity's
 * trajectory (visibility and position in every frame) and names how it moves: its first direction, speed, whether it
 * bounces, appears or disappears part way.
 *
 * Why identities and not slots: the video Q-Former's queries read through one linear map (`VideoTrackHead`'s default
 * reader) name the direction of an object alone in its clip 0.89 of the time and of one of two objects 0.55
 * (docs/lab03-plan.md, "Eighth round"): which motion belongs to which object is lost where the frames' tokens are
 * mixed. Here every identity has its own detector on every cell, so two objects are never mixed, and the question's
 * words ("the red circle") name the identity whose track answers it.
 *
 * Paper: Zhou, Wang, Krähenbühl, "Objects as Points" (2019), §3 (a centre heatmap per class and a local offset);
 * Zhou, Koltun, Krähenbühl, "Tracking Objects as Points" (ECCV 2020), tracking by detecting the objects in every frame.
 * Reference: xingyizhou/CenterNet `src/lib/models/losses.py` (`FocalLoss`, `RegL1Loss`: the heatmap and the offset
 * at the object's own cell), `src/lib/models/decode.py` (`ctdet_decode`). Here the heatmap is a softmax over cells
 * plus "absent" per identity (one object of each identity per clip at most: the world's generator never repeats one),
 * and the offset's loss is the squared error.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { gelu } from "../kernels/gelu";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";

/** x unchanged, with no gradient flowing back through it (tf.stopGradient, which tfjs lacks). */
const stopGradient = (x: tf.Tensor): tf.Tensor =>
  tf.customGrad(((input: tf.Tensor) => ({
    value: input.clone(),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  })) as Parameters<typeof tf.customGrad>[0])(x);

/**
 * log Σ exp over the last axis, its gradient the softmax. tf.logSumExp's tape also records the maximum it subtracts,
 * whose gradient is an Equal over the whole input (20–40 ms of the first version's 316 ms training step, by tf.profile).
 * x: [..., N] → [...]
 */
const logSumExp = (x: tf.Tensor): tf.Tensor =>
  tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const top = input.max(-1, true); // [..., 1]
    const value = input
      .sub(top)
      .exp()
      .sum(-1)
      .log()
      .add(top.squeeze([input.rank - 1])); // [...]
    save([input, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [saved, total]: tf.Tensor[]) => dy.expandDims(-1).mul(saved.sub(total.expandDims(-1)).exp()),
    };
  }) as Parameters<typeof tf.customGrad>[0])(x);

/**
 * Each cell's window × window neighbourhood of cells side by side, zero outside the grid, as `patchNeighbourhoods`
 * (models/llava.ts) gives it, by one matrix product with a fixed 0/1 matrix over the cell axis instead of padded
 * slices: its gradient is one product too, where a sliced window's gradient pads and the concat's gradient slices
 * (not timed on its own: docs/lab03-plan.md, "Eleventh round", times the tracker's step before and after this and
 * its other changes together). features: [N, g·g, D] → [N, g·g, w²·D], neighbours in row-major order.
 */
export function cellNeighbourhoods(features: tf.Tensor, window: number): tf.Tensor {
  const [N, G, D] = features.shape;
  const grid = Math.round(Math.sqrt(G));
  if (features.rank !== 3 || grid * grid !== G)
    throw new Error(`cellNeighbourhoods: features must be [N, g·g, D] (a square grid), got [${features.shape}]`);
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0)
    throw new Error(`cellNeighbourhoods: window must be an odd integer ≥ 1, got ${JSON.stringify(window)}`);
  if (window === 1) return features.clone();
  const half = (window - 1) / 2;
  const W = window * window;
  const pick = new Float32Array(W * G * G); // [w², g·g (cell), g·g (its neighbour)]
  for (let dy = 0; dy < window; dy++)
    for (let dx = 0; dx < window; dx++)
      for (let c = 0; c < G; c++) {
        const [y, x] = [Math.floor(c / grid) + dy - half, (c % grid) + dx - half];
        if (y >= 0 && y < grid && x >= 0 && x < grid) pick[((dy * window + dx) * G + c) * G + y * grid + x] = 1;
      }
  return tf.tidy(() => {
    const byCell = features.transpose([1, 0, 2]).reshape([G, N * D]); // [g·g, N·D]: a cell's features of every frame in a row
    const gathered = tf.tensor2d(pick, [W * G, G]).matMul(byCell); // [w²·g·g, N·D]: neighbour k of cell c in row k·g·g + c
    return gathered
      .reshape([W, G, N, D])
      .transpose([2, 1, 0, 3])
      .reshape([N, G, W * D]); // [N, g·g, w²·D]
  });
}

/** A frame-to-frame step in [−1, 1] units times this is in units of 2 px on the world's 64-px canvas (a slow step of 1.5 px: 0.75). */
const MOTION_SCALE = 16;

/** A tracker. Defaults are filled by {@link resolveVideoObjectTrackerConfig}. */
export interface VideoObjectTrackerConfig {
  /** Colours of the world's objects. Default 6. */
  readonly colors?: number;
  /** Shapes of the world's objects. Default 5. Identities I = colors × shapes. */
  readonly shapes?: number;
  /** Frames F of a clip. Default 12. */
  readonly frames?: number;
  /** Classes of each motion attribute the trajectory reader names, in order. Default [4, 2, 2, 2, 2] (direction, speed, bounces, appears, disappears). */
  readonly motionClasses?: readonly number[];
  /** Each cell's detector reads its window × window neighbourhood of cells (odd). Default 3. */
  readonly window?: number;
  /** Hidden width of a cell's detector. Default 256. */
  readonly hiddenSize?: number;
  /** Hidden width of the trajectory reader (two hidden layers). Default 128. */
  readonly trajectoryHiddenSize?: number;
}

/** A {@link VideoObjectTrackerConfig} with every default filled. */
export interface ResolvedVideoObjectTrackerConfig {
  readonly colors: number;
  readonly shapes: number;
  readonly frames: number;
  readonly motionClasses: readonly number[];
  readonly window: number;
  readonly hiddenSize: number;
  readonly trajectoryHiddenSize: number;
}

/** Fills every default of a {@link VideoObjectTrackerConfig} and checks it (idempotent). */
export function resolveVideoObjectTrackerConfig(config: VideoObjectTrackerConfig): ResolvedVideoObjectTrackerConfig {
  const resolved: ResolvedVideoObjectTrackerConfig = {
    colors: config.colors ?? 6,
    shapes: config.shapes ?? 5,
    frames: config.frames ?? 12,
    motionClasses: config.motionClasses ?? [4, 2, 2, 2, 2],
    window: config.window ?? 3,
    hiddenSize: config.hiddenSize ?? 256,
    trajectoryHiddenSize: config.trajectoryHiddenSize ?? 128,
  };
  for (const key of ["colors", "shapes", "frames", "hiddenSize", "trajectoryHiddenSize"] as const)
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1)
      throw new Error(`VideoObjectTracker: config.${key} must be a positive integer, got ${JSON.stringify(resolved[key])}`);
  if (!Number.isInteger(resolved.window) || resolved.window < 1 || resolved.window % 2 === 0)
    throw new Error(`VideoObjectTracker: config.window must be an odd positive integer, got ${JSON.stringify(resolved.window)}`);
  if (
    !Array.isArray(resolved.motionClasses) ||
    resolved.motionClasses.length === 0 ||
    !resolved.motionClasses.every((c) => Number.isInteger(c) && c >= 2)
  )
    throw new Error(
      `VideoObjectTracker: config.motionClasses must be a non-empty list of class counts ≥ 2, got ${JSON.stringify(resolved.motionClasses)}`,
    );
  return resolved;
}

/** What the tracker sees of a batch of clips, per identity. */
export interface IdentityTracks {
  /** [B, I, F] log-odds that the identity is visible in the frame. */
  readonly visibility: tf.Tensor;
  /** [B, I, F, 2] its expected position (x, y) in [−1, 1] (the canvas's centre at 0), given that it is visible. */
  readonly position: tf.Tensor;
  /** Per motion attribute, [B, I, classes] logits, read from the identity's trajectory. */
  readonly motion: readonly tf.Tensor[];
  /** [B·F, I, G + 1] log-probabilities of each cell holding the identity's centre, then of "absent" (for the loss). */
  readonly cellLogProbabilities: tf.Tensor;
  /** [B·F, I, G, 2] each cell's position for each identity: the cell's centre plus its predicted offset (for the loss). */
  readonly cellPositions: tf.Tensor;
}

/** The objects of a batch of clips by identity: the loss's targets. */
export interface IdentityTargets {
  /** [B, I, F] 1 where the identity is in the frame. */
  readonly visible: tf.Tensor;
  /** [B, I, F, 2] its position in [−1, 1] (any value where not visible). */
  readonly position: tf.Tensor;
  /** [B, I] 1 where the clip holds the identity. */
  readonly present: tf.Tensor;
  /** Per motion attribute, [B, I] int32 class indices (any value where the identity is not present). */
  readonly motion: readonly tf.Tensor[];
}

/** The tracker's loss and its parts (each averaged as its comment says). */
export interface TrackerLoss {
  readonly total: tf.Scalar;
  /** Cross-entropy of the cell holding each identity's centre (or "absent"), summed over identities, per frame. */
  readonly detection: tf.Scalar;
  /** Squared position error at the object's own cell, per visible object and frame. */
  readonly position: tf.Scalar;
  /** The motion attributes' cross-entropy, summed over attributes, per present object. */
  readonly motion: tf.Scalar;
}

export class VideoObjectTracker extends Module {
  readonly config: ResolvedVideoObjectTrackerConfig;
  /** A cell's neighbourhood [·, w²·Dv] → hidden [·, H]. */
  readonly cellHidden: Linear;
  /** Hidden [·, H] → each identity's centre logit [·, I]. */
  readonly cellCentre: Linear;
  /** Hidden [·, H] → each identity's offset (x, y) within the cell, before tanh [·, I·2]. */
  readonly cellOffset: Linear;
  /** The frame's class token [·, Dv] → each identity's "absent" logit [·, I]. */
  readonly absentLogits: Linear;
  /** The trajectory reader: [·, 5F] → [·, Ht] → [·, Ht] → every motion attribute's logits. */
  readonly trajectoryHidden: Linear;
  readonly trajectoryHidden2: Linear;
  readonly trajectoryOutput: Linear;
  /** Dv, the width of the frame tokens it reads. */
  readonly visionWidth: number;

  /** visionWidth: Dv, the frame tokens' width. */
  constructor(config: VideoObjectTrackerConfig, sizes: { visionWidth: number; seed: number }) {
    super();
    this.config = resolveVideoObjectTrackerConfig(config);
    if (!Number.isInteger(sizes.visionWidth) || sizes.visionWidth < 1)
      throw new Error(
        `VideoObjectTracker: sizes.visionWidth must be a positive integer, got ${JSON.stringify(sizes.visionWidth)}`,
      );
    this.visionWidth = sizes.visionWidth;
    const { window, hiddenSize, trajectoryHiddenSize, frames } = this.config;
    const random = new Random(sizes.seed);
    const linear = (name: string, inFeatures: number, outFeatures: number) =>
      this.module(name, new Linear({ inFeatures, outFeatures, seed: random.nextSeed(), initStd: 1 / Math.sqrt(3 * inFeatures) }));
    this.cellHidden = linear("cell_hidden", window * window * sizes.visionWidth, hiddenSize);
    this.cellCentre = linear("cell_centre", hiddenSize, this.identities);
    this.cellOffset = linear("cell_offset", hiddenSize, this.identities * 2);
    this.absentLogits = linear("absent_logits", sizes.visionWidth, this.identities);
    this.trajectoryHidden = linear("trajectory_hidden", 5 * frames, trajectoryHiddenSize);
    this.trajectoryHidden2 = linear("trajectory_hidden_2", trajectoryHiddenSize, trajectoryHiddenSize);
    this.trajectoryOutput = linear(
      "trajectory_output",
      trajectoryHiddenSize,
      this.config.motionClasses.reduce((sum, c) => sum + c, 0),
    );
  }

  /** Identities I = colors × shapes; identity i is colour ⌊i / shapes⌋, shape i mod shapes. */
  get identities(): number {
    return this.config.colors * this.config.shapes;
  }

  /**
   * features: [B, F, K, Dv], K = 1 + g² (the class token, then the patch grid row-major, as
   * `VideoLlamaForConditionalGeneration.frameTokens` gives them) → every identity's track.
   */
  track(features: tf.Tensor): IdentityTracks {
    return tidy<IdentityTracks>(() => {
      const detected = this.detect(features);
      return { ...detected, motion: this.readTrajectories(detected.visibility, detected.position) };
    });
  }

  /**
   * The detector alone, frame by frame (no frame sees another: a clip's frames may come in any order).
   * features: [B, F, K, Dv] → visibility [B, I, F], position [B, I, F, 2], and the cells' outputs for the loss.
   */
  detect(features: tf.Tensor): Omit<IdentityTracks, "motion"> {
    if (features.rank !== 4) throw new Error(`VideoObjectTracker: features must be [B, F, K, Dv], got [${features.shape}]`);
    const [B, F, K, Dv] = features.shape;
    const G = K - 1;
    const grid = Math.round(Math.sqrt(G));
    if (grid * grid !== G)
      throw new Error(`VideoObjectTracker: a frame must hold a class token and a square patch grid, got ${K} tokens`);
    if (Dv !== this.visionWidth)
      throw new Error(`VideoObjectTracker: frame tokens ${Dv} wide for a tracker of visionWidth ${this.visionWidth}`);
    if (F !== this.config.frames)
      throw new Error(`VideoObjectTracker: clips of ${F} frames for a tracker of config.frames ${this.config.frames}`);
    const I = this.identities;
    return tidy<Omit<IdentityTracks, "motion">>(() => {
      const frames = features.reshape([B * F, K, Dv]); // [B·F, K, Dv]: frames as rows
      const classToken = frames.slice([0, 0, 0], [B * F, 1, Dv]).reshape([B * F, Dv]); // [B·F, Dv]
      const cells = cellNeighbourhoods(frames.slice([0, 1, 0], [B * F, G, Dv]), this.config.window); // [B·F, G, w²·Dv]
      const hidden = gelu(this.cellHidden.apply(cells)); // [B·F, G, H]
      const centreLogits = this.cellCentre.apply(hidden).transpose([0, 2, 1]); // [B·F, I, G]
      const absent = this.absentLogits.apply(classToken).reshape([B * F, I, 1]); // [B·F, I, 1]
      const cellLogProbabilities = tf.logSoftmax(tf.concat([centreLogits, absent], 2)); // [B·F, I, G + 1]
      // A cell's centre in [−1, 1] plus an offset of at most 1.5 half-cells (an object's centre may sit in a neighbour
      // whose pooled features show less of it).
      const centres = tf.tensor2d(
        Array.from({ length: G }, (_, c) =>
          [((c % grid) + 0.5) / grid, (Math.floor(c / grid) + 0.5) / grid].map((v) => 2 * v - 1),
        ),
        [G, 2],
      ); // [G, 2] (x, y)
      const offsets = tf
        .tanh(
          this.cellOffset
            .apply(hidden)
            .reshape([B * F, G, I, 2])
            .transpose([0, 2, 1, 3]),
        )
        .mul(1.5 / grid); // [B·F, I, G, 2]
      const cellPositions = offsets.add(centres); // [B·F, I, G, 2]
      const where = tf.softmax(centreLogits); // [B·F, I, G]: P(cell | visible)
      const position = where.expandDims(3).mul(cellPositions).sum(2); // [B·F, I, 2]
      const visibility = logSumExp(centreLogits).sub(absent.reshape([B * F, I])); // [B·F, I]: log P(seen) − log P(absent)
      // [B·F, I, ·] → [B, I, F, ·]: each identity's frames in order
      const perIdentity = (x: tf.Tensor, width: number) => x.reshape([B, F, I, width]).transpose([0, 2, 1, 3]);
      const visibilityByFrame = perIdentity(visibility, 1).reshape([B, I, F]); // [B, I, F]
      const positionByFrame = perIdentity(position, 2); // [B, I, F, 2]
      return { visibility: visibilityByFrame, position: positionByFrame, cellLogProbabilities, cellPositions };
    });
  }

  /**
   * What a clip's frames show of every identity, frame by frame, packed to travel with the frames (a view that
   * shuffles or repeats frames permutes these rows the same way). features: [B, F, K, Dv] → [B, F, I, 3]: per frame
   * and identity, its visibility log-odds and its expected position (x, y).
   */
  frameDetections(features: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const { visibility, position } = this.detect(features);
      return tf.concat([visibility.expandDims(3), position], 3).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, I, F, 3] → [B, F, I, 3]
    });
  }

  /**
   * Packed detections ({@link frameDetections}, frames in the order shown) → each identity's visibility [B, I, F],
   * position [B, I, F, 2] and motion logits (the trajectory reader's).
   */
  readDetections(detections: tf.Tensor): Pick<IdentityTracks, "visibility" | "position" | "motion"> {
    const I = this.identities;
    const F = this.config.frames;
    if (detections.rank !== 4 || detections.shape[1] !== F || detections.shape[2] !== I || detections.shape[3] !== 3)
      throw new Error(`VideoObjectTracker: detections must be [B, ${F}, ${I}, 3], got [${detections.shape}]`);
    const B = detections.shape[0];
    return tidy<Pick<IdentityTracks, "visibility" | "position" | "motion">>(() => {
      const byIdentity = detections.transpose([0, 2, 1, 3]); // [B, I, F, 3]
      const visibility = byIdentity.slice([0, 0, 0, 0], [B, I, F, 1]).reshape([B, I, F]); // [B, I, F]
      const position = byIdentity.slice([0, 0, 0, 1], [B, I, F, 2]); // [B, I, F, 2]
      return { visibility, position, motion: this.readTrajectories(visibility, position) };
    });
  }

  /**
   * The S identities each clip most likely holds, likeliest first: ranked by their mean probability of being seen,
   * those marked `preferred` (1) before all others. visibility: [B, I, F] log-odds; preferred: [B, I] 0/1 or none
   * → [B, S] int32 identity indices.
   */
  likeliestIdentities(visibility: tf.Tensor, slots: number, preferred?: tf.Tensor): tf.Tensor2D {
    if (!Number.isInteger(slots) || slots < 1 || slots > this.identities)
      throw new Error(`VideoObjectTracker: slots must be an integer from 1 to ${this.identities}, got ${JSON.stringify(slots)}`);
    if (preferred && (preferred.rank !== 2 || preferred.shape.some((d, k) => d !== visibility.shape[k])))
      throw new Error(`VideoObjectTracker: preferred must be [${visibility.shape.slice(0, 2)}], got [${preferred.shape}]`);
    return tf.tidy(() => {
      const seen = tf.sigmoid(visibility).mean(2); // [B, I] in (0, 1)
      return tf.topk(preferred ? seen.add(preferred.mul(2)) : seen, slots).indices as tf.Tensor2D; // [B, S]
    });
  }

  /**
   * The trajectory reader: each identity's visibility [B, I, F] (log-odds) and position [B, I, F, 2] → per motion
   * attribute [B, I, classes] logits. It reads the probabilities and the positions weighted by them (an unseen frame
   * shows no position), with the gradient stopped: the detector learns from the frames' targets alone.
   */
  readTrajectories(visibility: tf.Tensor, position: tf.Tensor): tf.Tensor[] {
    const [B, I, F] = visibility.shape;
    return tf.tidy(() => {
      const seen = tf.sigmoid(stopGradient(visibility)); // [B, I, F]
      const at = stopGradient(position); // [B, I, F, 2]
      const where = at.mul(seen.expandDims(3)).reshape([B, I, 2 * F]); // [B, I, 2F]: x0, y0, x1, …
      // Each step's motion, where the object is seen in both frames, scaled so that a slow step (1.5 px, 0.047 of the
      // [−1, 1] range) is 0.75: the reader need not learn large weights to see it.
      const both = seen
        .slice([0, 0, 1], [B, I, F - 1])
        .mul(seen.slice([0, 0, 0], [B, I, F - 1]))
        .expandDims(3); // [B, I, F − 1, 1]
      const steps = at
        .slice([0, 0, 1, 0], [B, I, F - 1, 2])
        .sub(at.slice([0, 0, 0, 0], [B, I, F - 1, 2]))
        .mul(both)
        .mul(MOTION_SCALE); // [B, I, F − 1, 2]
      const motion = tf.concat([tf.zeros([B, I, 1, 2]), steps], 2).reshape([B, I, 2 * F]); // [B, I, 2F]: no step before frame 0
      const inputs = tf.concat([seen, where, motion], 2).reshape([B * I, 5 * F]); // [B·I, 5F]
      const hidden = gelu(this.trajectoryHidden2.apply(gelu(this.trajectoryHidden.apply(inputs))));
      const out = this.trajectoryOutput.apply(hidden).reshape([B, I, -1]); // [B, I, Σ classes]
      let offset = 0;
      return this.config.motionClasses.map((classes) => {
        const logits = out.slice([0, 0, offset], [B, I, classes]); // [B, I, classes]
        offset += classes;
        return logits;
      });
    });
  }

  /**
   * The loss: per frame and identity, the cross-entropy of the cell that holds its centre (or "absent"); at that cell,
   * positionWeight × the squared error of the position; per present identity, each motion attribute's cross-entropy.
   */
  loss(tracks: IdentityTracks, targets: IdentityTargets, positionWeight = 10): TrackerLoss {
    const [B, I, F] = tracks.visibility.shape;
    const expect = (name: string, t: tf.Tensor, shape: number[]) => {
      if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k]))
        throw new Error(`VideoObjectTracker: targets.${name} must be [${shape}], got [${t.shape}]`);
    };
    expect("visible", targets.visible, [B, I, F]);
    expect("position", targets.position, [B, I, F, 2]);
    expect("present", targets.present, [B, I]);
    if (targets.motion.length !== this.config.motionClasses.length)
      throw new Error(
        `VideoObjectTracker: ${targets.motion.length} motion targets for ${this.config.motionClasses.length} attributes`,
      );
    targets.motion.forEach((t, k) => expect(`motion[${k}]`, t, [B, I]));
    const G = tracks.cellLogProbabilities.shape[2]! - 1;
    const grid = Math.round(Math.sqrt(G));
    return tf.tidy(() => {
      // [B, I, F, ·] → [B·F, I, ·]: the targets in the cells' row order
      const perFrame = (x: tf.Tensor, width: number) =>
        x
          .reshape([B, I, F, width])
          .transpose([0, 2, 1, 3])
          .reshape([B * F, I, width]);
      const visible = perFrame(targets.visible, 1).reshape([B * F, I]); // [B·F, I]
      const truth = perFrame(targets.position, 2); // [B·F, I, 2]
      const column = truth
        .slice([0, 0, 0], [B * F, I, 1])
        .add(1)
        .mul(grid / 2)
        .floor()
        .clipByValue(0, grid - 1); // [B·F, I, 1]
      const row = truth
        .slice([0, 0, 1], [B * F, I, 1])
        .add(1)
        .mul(grid / 2)
        .floor()
        .clipByValue(0, grid - 1);
      const cell = row
        .mul(grid)
        .add(column)
        .reshape([B * F, I]); // [B·F, I]: the cell holding the centre
      const target = cell
        .mul(visible)
        .add(tf.scalar(G).mul(tf.scalar(1).sub(visible)))
        .cast("int32"); // "absent" = G
      const oneHot = tf.oneHot(target, G + 1); // [B·F, I, G + 1]
      const detection = tracks.cellLogProbabilities.mul(oneHot).sum(2).neg().sum(1).mean() as tf.Scalar; // summed over identities, per frame
      const atCell = tracks.cellPositions.mul(tf.oneHot(cell.cast("int32"), G).expandDims(3)).sum(2); // [B·F, I, 2]: the position predicted at the true cell
      const visibleCount = visible.sum().maximum(1);
      const position = atCell.sub(truth).square().sum(2).mul(visible).sum().div(visibleCount) as tf.Scalar;
      const present = targets.present; // [B, I]
      const motion = tracks.motion
        .map((logits, k) =>
          tf.losses
            .softmaxCrossEntropy(
              tf.oneHot(targets.motion[k].cast("int32"), this.config.motionClasses[k]),
              logits,
              undefined,
              undefined,
              tf.Reduction.NONE,
            )
            .mul(present)
            .sum(),
        )
        .reduce((sum, x) => sum.add(x))
        .div(present.sum().maximum(1)) as tf.Scalar;
      const total = detection.add(position.mul(positionWeight)).add(motion) as tf.Scalar;
      return { total, detection, position, motion };
    });
  }
}
