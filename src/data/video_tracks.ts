/**
 * The exact tracks of generated clips as the targets of the video track head
 * (`src/models/video_track_head.ts`): per clip and object slot, every frame's
 * position (scaled to [−1, 1]) and visibility, whether the slot holds an
 * object, and the object's attributes as class indices (first direction,
 * colour, shape, speed, bounces, appears, disappears: `WORLD_TRACK_ATTRIBUTE_NAMES`). Stored records keep no per-frame
 * positions, so only clips drawn by the generator have track targets.
 */
import * as tf from "@tensorflow/tfjs";
import { DIRECTIONS, SPEEDS, type Track } from "./video";
import { COLOR_NAMES, SHAPE_NAMES } from "./vocabulary";

/**
 * The world's track attributes by name, in the order of `WORLD_TRACK_ATTRIBUTES` (models/video_track_head.ts: the head's
 * default, which the data layer may not import; test/video_track_head.test.ts checks the two agree).
 */
export const WORLD_TRACK_ATTRIBUTE_NAMES = ["direction", "color", "shape", "speed", "bounces", "appears", "disappears"] as const;

/** One attribute as the track head's config takes it (`TrackAttribute` of models/video_track_head.ts). */
export interface WorldTrackAttribute {
  readonly name: string;
  readonly classes: number;
  readonly tokenIds?: readonly number[];
}

/** A batch's track targets as tensors: the shape of `TrackTargets` (models/video_track_head.ts). */
export interface TrackTargetTensors {
  /** [B, S, F, 2] positions in [−1, 1]. */
  readonly position: tf.Tensor;
  /** [B, S, F] 1 where the object is in the frame. */
  readonly visible: tf.Tensor;
  /** [B, S] 1 for a real object, 0 for an empty slot. */
  readonly exists: tf.Tensor;
  /** Per attribute, [B, S] int32 class indices. */
  readonly attributes: readonly tf.Tensor[];
}

const DIRECTION_NAMES = Object.keys(DIRECTIONS);

/** The class names of each of {@link WORLD_TRACK_ATTRIBUTE_NAMES}, in the order of the targets' class indices. */
export const WORLD_TRACK_CLASS_NAMES: readonly (readonly string[])[] = [
  DIRECTION_NAMES,
  COLOR_NAMES,
  SHAPE_NAMES,
  Object.keys(SPEEDS),
  ["no", "yes"],
  ["no", "yes"],
  ["no", "yes"],
];

/** The attributes whose class words a code token may speak (`worldTrackAttributes`): what an object is and where it goes. */
const SPOKEN_ATTRIBUTES = new Set(["direction", "color", "shape"]);

/** A track's class index of each of {@link WORLD_TRACK_ATTRIBUTE_NAMES}, in a clip of `frames` frames. */
export function trackAttributeClasses(track: Track, frames: number): number[] {
  const bounced = track.bounces.some((b) => b >= track.appearAt && b < track.disappearAt); // as the clip's questions count it
  const classes = [
    DIRECTION_NAMES.indexOf(track.direction),
    COLOR_NAMES.indexOf(track.object.color),
    SHAPE_NAMES.indexOf(track.object.shape),
    Object.keys(SPEEDS).indexOf(track.speed),
    bounced ? 1 : 0,
    track.appearAt > 0 ? 1 : 0,
    track.disappearAt < frames ? 1 : 0,
  ];
  classes.forEach((value, a) => {
    if (value < 0)
      throw new Error(`trackAttributeClasses: the track's ${WORLD_TRACK_ATTRIBUTE_NAMES[a]} is none of ${WORLD_TRACK_CLASS_NAMES[a].join(", ")}`);
  });
  return classes;
}

/**
 * The world's track attributes, each class with its word's token (" red", as the words appear inside a question) when
 * a tokenizer is given, so that the code tokens speak the LLM's own words. A word that is not one token is an error.
 */
export function worldTrackAttributes(tokenizer?: { encode(text: string): number[] }): WorldTrackAttribute[] {
  return WORLD_TRACK_ATTRIBUTE_NAMES.map((name, k) => {
    const attribute = { name, classes: WORLD_TRACK_CLASS_NAMES[k].length };
    if (!tokenizer || !SPOKEN_ATTRIBUTES.has(attribute.name)) return { ...attribute };
    const tokenIds = WORLD_TRACK_CLASS_NAMES[k].map((word) => {
      const ids = tokenizer.encode(` ${word}`);
      if (ids.length !== 1)
        throw new Error(`worldTrackAttributes: " ${word}" is ${ids.length} tokens (${JSON.stringify(ids)}), expected one`);
      return ids[0];
    });
    return { ...attribute, tokenIds };
  });
}

/** Track targets of N clips, S slots and F frames, as flat arrays (row n's slots at n·S …). */
export interface TrackTargetArrays {
  readonly clips: number;
  readonly slots: number;
  readonly frames: number;
  /** [N, S, F, 2] */
  readonly position: Float32Array;
  /** [N, S, F] */
  readonly visible: Float32Array;
  /** [N, S] */
  readonly exists: Float32Array;
  /** [N, S] per attribute of {@link WORLD_TRACK_ATTRIBUTE_NAMES}. */
  readonly attributes: readonly Int32Array[];
}

/** Each clip's tracks → targets; a clip's objects fill its first slots, the rest are empty. */
export function trackTargetArrays(
  clips: readonly (readonly Track[])[],
  options: { slots: number; frames: number; canvas: number },
): TrackTargetArrays {
  const { slots: S, frames: F, canvas } = options;
  const N = clips.length;
  const out: TrackTargetArrays = {
    clips: N,
    slots: S,
    frames: F,
    position: new Float32Array(N * S * F * 2),
    visible: new Float32Array(N * S * F),
    exists: new Float32Array(N * S),
    attributes: WORLD_TRACK_ATTRIBUTE_NAMES.map(() => new Int32Array(N * S)),
  };
  const half = canvas / 2;
  clips.forEach((tracks, n) => {
    if (tracks.length > S) throw new Error(`trackTargetArrays: clip ${n} has ${tracks.length} objects for ${S} slots`);
    tracks.forEach((track, k) => {
      if (track.positions.length !== F)
        throw new Error(`trackTargetArrays: clip ${n} has ${track.positions.length} frames, expected ${F}`);
      const j = n * S + k;
      out.exists[j] = 1;
      trackAttributeClasses(track, F).forEach((value, a) => (out.attributes[a][j] = value));
      for (let f = 0; f < F; f++) {
        out.visible[j * F + f] = f >= track.appearAt && f < track.disappearAt ? 1 : 0;
        out.position[(j * F + f) * 2] = track.positions[f][0] / half - 1;
        out.position[(j * F + f) * 2 + 1] = track.positions[f][1] / half - 1;
      }
    });
  });
  return out;
}

/** The targets of the clips at `rows`, as tensors (the caller disposes them; see {@link disposeTrackTargets}). */
export function gatherTrackTargets(arrays: TrackTargetArrays, rows: readonly number[]): TrackTargetTensors {
  const { slots: S, frames: F } = arrays;
  const B = rows.length;
  const pick = <A extends Float32Array | Int32Array>(array: A, per: number): A => {
    const out = new (array.constructor as { new (n: number): A })(B * S * per);
    rows.forEach((row, b) => {
      if (!(row >= 0 && row < arrays.clips)) throw new Error(`gatherTrackTargets: row ${row} of ${arrays.clips} clips`);
      out.set(array.subarray(row * S * per, (row + 1) * S * per), b * S * per);
    });
    return out;
  };
  return {
    position: tf.tensor4d(pick(arrays.position, F * 2), [B, S, F, 2]),
    visible: tf.tensor3d(pick(arrays.visible, F), [B, S, F]),
    exists: tf.tensor2d(pick(arrays.exists, 1), [B, S]),
    attributes: arrays.attributes.map((a) => tf.tensor2d(pick(a, 1), [B, S], "int32")),
  };
}

export function disposeTrackTargets(targets: TrackTargetTensors): void {
  tf.dispose([targets.position, targets.visible, targets.exists, ...targets.attributes]);
}

/** The motion attributes the object tracker names from a trajectory: every world attribute but colour and shape, in order. */
export const WORLD_MOTION_ATTRIBUTE_NAMES = WORLD_TRACK_ATTRIBUTE_NAMES.filter((name) => name !== "color" && name !== "shape");

/** Targets of N clips by identity (colour × shape) for the object tracker (models/video_object_tracker.ts), as flat arrays. */
export interface IdentityTargetArrays {
  readonly clips: number;
  /** I = colours × shapes; identity i is colour ⌊i / shapes⌋ and shape i mod shapes of `COLOR_NAMES`, `SHAPE_NAMES`. */
  readonly identities: number;
  readonly frames: number;
  /** [N, I, F] 1 where the identity is in the frame. */
  readonly visible: Float32Array;
  /** [N, I, F, 2] positions in [−1, 1] (0 where the clip does not hold the identity). */
  readonly position: Float32Array;
  /** [N, I] 1 where the clip holds the identity. */
  readonly present: Float32Array;
  /** [N, I] per attribute of {@link WORLD_MOTION_ATTRIBUTE_NAMES} (0 where the clip does not hold the identity). */
  readonly motion: readonly Int32Array[];
}

/** A track's identity: its colour's index × the shapes + its shape's index. */
export function trackIdentity(track: Track): number {
  const color = COLOR_NAMES.indexOf(track.object.color);
  const shape = SHAPE_NAMES.indexOf(track.object.shape);
  if (color < 0 || shape < 0)
    throw new Error(
      `trackIdentity: a ${JSON.stringify(track.object.color)} ${JSON.stringify(track.object.shape)} is not a world object (colours ${COLOR_NAMES.join(", ")}; shapes ${SHAPE_NAMES.join(", ")})`,
    );
  return color * SHAPE_NAMES.length + shape;
}

/** Each clip's tracks → targets by identity. Two objects of one identity in a clip are an error (the world never draws them). */
export function identityTargetArrays(
  clips: readonly (readonly Track[] | undefined)[],
  options: { frames: number; canvas: number },
): IdentityTargetArrays {
  const { frames: F, canvas } = options;
  const I = COLOR_NAMES.length * SHAPE_NAMES.length;
  const N = clips.length;
  const motionIndex = WORLD_MOTION_ATTRIBUTE_NAMES.map((name) => WORLD_TRACK_ATTRIBUTE_NAMES.indexOf(name));
  const out: IdentityTargetArrays = {
    clips: N,
    identities: I,
    frames: F,
    visible: new Float32Array(N * I * F),
    position: new Float32Array(N * I * F * 2),
    present: new Float32Array(N * I),
    motion: motionIndex.map(() => new Int32Array(N * I)),
  };
  const half = canvas / 2;
  clips.forEach((tracks, n) => {
    if (!tracks) throw new Error(`identityTargetArrays: clip ${n} has no tracks (only generated clips have them)`);
    for (const track of tracks) {
      if (track.positions.length !== F)
        throw new Error(`identityTargetArrays: clip ${n} has ${track.positions.length} frames, expected ${F}`);
      const i = trackIdentity(track);
      const j = n * I + i;
      if (out.present[j]) throw new Error(`identityTargetArrays: clip ${n} holds two ${track.object.color} ${track.object.shape}s`);
      out.present[j] = 1;
      const classes = trackAttributeClasses(track, F);
      motionIndex.forEach((a, m) => (out.motion[m][j] = classes[a]));
      for (let f = 0; f < F; f++) {
        out.visible[j * F + f] = f >= track.appearAt && f < track.disappearAt ? 1 : 0;
        out.position[(j * F + f) * 2] = track.positions[f][0] / half - 1;
        out.position[(j * F + f) * 2 + 1] = track.positions[f][1] / half - 1;
      }
    }
  });
  return out;
}

/** The identity targets of the clips at `rows`, as the object tracker's loss takes them (the caller disposes them). */
export function gatherIdentityTargets(
  arrays: IdentityTargetArrays,
  rows: readonly number[],
): { visible: tf.Tensor3D; position: tf.Tensor4D; present: tf.Tensor2D; motion: tf.Tensor2D[] } {
  const { identities: I, frames: F } = arrays;
  const B = rows.length;
  const pick = <A extends Float32Array | Int32Array>(array: A, per: number): A => {
    const out = new (array.constructor as { new (n: number): A })(B * I * per);
    rows.forEach((row, b) => {
      if (!(row >= 0 && row < arrays.clips)) throw new Error(`gatherIdentityTargets: row ${row} of ${arrays.clips} clips`);
      out.set(array.subarray(row * I * per, (row + 1) * I * per), b * I * per);
    });
    return out;
  };
  return {
    visible: tf.tensor3d(pick(arrays.visible, F), [B, I, F]),
    position: tf.tensor4d(pick(arrays.position, F * 2), [B, I, F, 2]),
    present: tf.tensor2d(pick(arrays.present, 1), [B, I]),
    motion: arrays.motion.map((m) => tf.tensor2d(pick(m, 1), [B, I], "int32")),
  };
}
