/**
 * A track head on the video Q-Former, and the code tokens made from it.
 *
 * The head reads the Q-Former's Nv query outputs, flattened, with one linear
 * map, and predicts for each of S object slots: every frame's position and
 * visibility, and one categorical distribution per attribute (the object's
 * first direction, its colour, its shape). It is trained with a set loss: each
 * clip's objects are assigned to the slots by the cheapest permutation, as
 * DETR assigns objects to its queries (with S ≤ 4 every permutation is tried,
 * where DETR runs the Hungarian algorithm). A clip with fewer objects than
 * slots leaves a slot to learn "never visible".
 *
 * Code tokens (`codeTokens`): one soft token per slot after the projected
 * video queries. Each is a learned linear map of that slot's predictions — the
 * attributes' softmax and the mean visibility, and with `codeTimeline` its
 * visibility and position in every frame — plus, for the attributes that name
 * their classes' tokens (`tokenIds`), the LLM's own embeddings of those words
 * weighted by the probabilities. The frozen LLM is handed a code of what each
 * object does instead of having to decode it from the queries through one
 * linear projection. docs/lab03-plan.md measures it ("Fourth round": through
 * the plain projection the frozen LLM keeps little of the direction the head
 * reads, with the code tokens it keeps most; "Fifth round": the words and the
 * timeline in the code, as the committed checkpoint has them).
 *
 * Paper: Carion et al., "End-to-End Object Detection with Transformers"
 * (ECCV 2020), §3.1 (the set prediction loss over slot↔object assignments).
 * Reference: facebookresearch/detr `models/matcher.py` (`HungarianMatcher`:
 * the matching cost), `models/detr.py` (`SetCriterion`: the loss of the
 * matched pairs). The code tokens are this project's, after BLIP-2's use of
 * a trained bridge's outputs as a soft prompt (Li et al., 2023, §3.3).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";

/** One categorical attribute of an object (e.g. its colour) and its number of classes. */
export interface TrackAttribute {
  readonly name: string;
  readonly classes: number;
  /**
   * The language model's token of each class's word (one per class), when the code tokens should speak it: a code
   * token then adds the LLM's own embeddings of these words, weighted by the predicted probabilities, so the words of
   * a question ("the red circle") can find the slot that holds them. Default none.
   */
  readonly tokenIds?: readonly number[];
}

/**
 * The world's attributes of a moving object: its first direction (left, right, up, down), colour (6), shape (5), speed
 * (slowly, quickly), and whether it bounces off a wall while visible, appears part way, disappears part way (no, yes):
 * what the clips' questions and captions say about it.
 */
export const WORLD_TRACK_ATTRIBUTES: readonly TrackAttribute[] = [
  { name: "direction", classes: 4 },
  { name: "color", classes: 6 },
  { name: "shape", classes: 5 },
  { name: "speed", classes: 2 },
  { name: "bounces", classes: 2 },
  { name: "appears", classes: 2 },
  { name: "disappears", classes: 2 },
];

/** A track head. Defaults are filled by {@link resolveVideoTrackHeadConfig}. */
export interface VideoTrackHeadConfig {
  /** Object slots S. Default 2 (the world's clips hold one or two objects). At most 4. */
  readonly slots?: number;
  /** Frames F each slot predicts a position and a visibility for. Default 12 (the world's clips). */
  readonly frames?: number;
  /** Categorical attributes per slot, in order. Default {@link WORLD_TRACK_ATTRIBUTES}. */
  readonly attributes?: readonly TrackAttribute[];
  /** One code token per slot after the projected video queries. Default true. */
  readonly codeTokens?: boolean;
  /** Weight of the squared position error (positions in [−1, 1]) in the set loss. Default 10. */
  readonly positionWeight?: number;
  /**
   * A slot's code also holds when it is visible and where it is: its visibility in every frame and its positions, so
   * that the LLM can place a slot in time (is it there at first, which bounces first). Default false.
   */
  readonly codeTimeline?: boolean;
}

export interface ResolvedVideoTrackHeadConfig {
  readonly slots: number;
  readonly frames: number;
  readonly attributes: readonly TrackAttribute[];
  readonly codeTokens: boolean;
  readonly positionWeight: number;
  readonly codeTimeline: boolean;
}

/** Fills every default of a {@link VideoTrackHeadConfig} and checks it (idempotent). */
export function resolveVideoTrackHeadConfig(config: VideoTrackHeadConfig): ResolvedVideoTrackHeadConfig {
  const resolved: ResolvedVideoTrackHeadConfig = {
    slots: config.slots ?? 2,
    frames: config.frames ?? 12,
    attributes: config.attributes ?? WORLD_TRACK_ATTRIBUTES,
    codeTokens: config.codeTokens ?? true,
    positionWeight: config.positionWeight ?? 10,
    codeTimeline: config.codeTimeline ?? false,
  };
  if (!Number.isInteger(resolved.slots) || resolved.slots < 1 || resolved.slots > 4)
    throw new Error(`VideoTrackHead: config.slots must be an integer from 1 to 4, got ${JSON.stringify(resolved.slots)}`);
  if (!Number.isInteger(resolved.frames) || resolved.frames < 1)
    throw new Error(`VideoTrackHead: config.frames must be a positive integer, got ${JSON.stringify(resolved.frames)}`);
  for (const attribute of resolved.attributes) {
    if (typeof attribute?.name !== "string" || !Number.isInteger(attribute.classes) || attribute.classes < 2)
      throw new Error(`VideoTrackHead: each attribute needs a name and at least 2 classes, got ${JSON.stringify(attribute)}`);
    const ids = attribute.tokenIds;
    if (
      ids !== undefined &&
      (!Array.isArray(ids) || ids.length !== attribute.classes || !ids.every((id) => Number.isInteger(id) && id >= 0))
    )
      throw new Error(
        `VideoTrackHead: attribute "${attribute.name}" needs one token id per class (${attribute.classes}), got ${JSON.stringify(ids)}`,
      );
  }
  for (const key of ["codeTokens", "codeTimeline"] as const)
    if (typeof resolved[key] !== "boolean")
      throw new Error(`VideoTrackHead: config.${key} must be true or false, got ${JSON.stringify(resolved[key])}`);
  if (!(resolved.positionWeight >= 0))
    throw new Error(`VideoTrackHead: config.positionWeight must be ≥ 0, got ${JSON.stringify(resolved.positionWeight)}`);
  return resolved;
}

/** What the head predicts for a batch of clips. */
export interface TrackPredictions {
  /** [B, S, F, 2] positions (x, y), a linear output trained toward the targets' [−1, 1] (the canvas's centre at 0). */
  readonly position: tf.Tensor;
  /** [B, S, F] visibility logits. */
  readonly visibility: tf.Tensor;
  /** Per attribute, [B, S, classes] logits. */
  readonly attributes: readonly tf.Tensor[];
}

/** The exact tracks of a batch of clips, objects in any order (see `src/data/video_tracks.ts`). */
export interface TrackTargets {
  /** [B, S, F, 2] positions in [−1, 1] (any value where not visible). */
  readonly position: tf.Tensor;
  /** [B, S, F] 1 where the object is in the frame. */
  readonly visible: tf.Tensor;
  /** [B, S] 1 for a real object, 0 for an empty slot (a clip with fewer objects). */
  readonly exists: tf.Tensor;
  /** Per attribute, [B, S] int32 class indices (any value for an empty slot). */
  readonly attributes: readonly tf.Tensor[];
}

/** The set loss of a batch and the assignment it chose. */
export interface TrackSetLoss {
  /** [B] each clip's loss under its cheapest assignment. */
  readonly loss: tf.Tensor1D;
  /**
   * [B] int32: for scoring, the index into {@link slotPermutations} of the assignment that is cheapest on positions
   * and visibility alone (so that the labels being scored do not choose it); permutation p puts object p[s] in slot s.
   */
  readonly assignment: tf.Tensor1D;
}

/** Every assignment of S objects to S slots: permutation p puts object p[s] in slot s (identity first). */
export function slotPermutations(slots: number): number[][] {
  if (slots <= 1) return [[0]];
  return slotPermutations(slots - 1)
    .flatMap((rest) => Array.from({ length: slots }, (_, at) => [...rest.slice(0, at), slots - 1, ...rest.slice(at)]))
    .sort((a, b) => a.join().localeCompare(b.join()));
}

export class VideoTrackHead extends Module {
  readonly config: ResolvedVideoTrackHeadConfig;
  /** Flattened queries [B, Nv·Dq] → every slot's predictions [B, S·P] (P = {@link valuesPerSlot}). */
  readonly predictor: Linear;
  /** A slot's code [·, C] → a soft token [·, Dtext] (C = {@link codeWidth}); absent without code tokens. */
  readonly codeProjection: Linear | undefined;

  /** queries: Nv; queryWidth: Dq; outputSize: Dtext (the code tokens' width). */
  constructor(config: VideoTrackHeadConfig, sizes: { queries: number; queryWidth: number; outputSize: number; seed: number }) {
    super();
    this.config = resolveVideoTrackHeadConfig(config);
    const random = new Random(sizes.seed);
    this.predictor = this.module(
      "predictor",
      new Linear({
        inFeatures: sizes.queries * sizes.queryWidth,
        outFeatures: this.config.slots * this.valuesPerSlot,
        seed: random.nextSeed(),
      }),
    );
    const codeSeed = random.nextSeed();
    this.codeProjection = this.config.codeTokens
      ? this.module(
          "code_projection",
          new Linear({
            inFeatures: this.codeWidth,
            outFeatures: sizes.outputSize,
            seed: codeSeed,
            initStd: 1 / Math.sqrt(3 * this.codeWidth), // the variance of nn.Linear's uniform(±1/√C)
          }),
        )
      : undefined;
  }

  /** Values per slot P: F positions (x, y), F visibility logits, then each attribute's logits. */
  get valuesPerSlot(): number {
    return 3 * this.config.frames + this.config.attributes.reduce((sum, a) => sum + a.classes, 0);
  }

  /** A slot's code C: each attribute's probabilities, its mean visibility, and with `codeTimeline` its F visibilities and F positions. */
  get codeWidth(): number {
    return (
      this.config.attributes.reduce((sum, a) => sum + a.classes, 0) + 1 + (this.config.codeTimeline ? 3 * this.config.frames : 0)
    );
  }

  /** queries: [B, Nv, Dq] → the predictions of every slot. */
  predict(queries: tf.Tensor): TrackPredictions {
    if (queries.rank !== 3) throw new Error(`VideoTrackHead: queries must be [B, Nv, Dq], got [${queries.shape}]`);
    const [B] = queries.shape;
    const { slots: S, frames: F } = this.config;
    return tidy<TrackPredictions>(() => {
      const out = this.predictor.apply(queries.reshape([B, -1])).reshape([B, S, this.valuesPerSlot]); // [B, S, P]: a slot's values side by side
      let offset = 3 * F;
      const attributes = this.config.attributes.map((a) => {
        const logits = out.slice([0, 0, offset], [B, S, a.classes]); // [B, S, classes]
        offset += a.classes;
        return logits;
      });
      return {
        position: out.slice([0, 0, 0], [B, S, 2 * F]).reshape([B, S, F, 2]), // [B, S, F, 2]: (x, y) per frame
        visibility: out.slice([0, 0, 2 * F], [B, S, F]), // [B, S, F]
        attributes,
      };
    });
  }

  /**
   * The code tokens: predictions → [B, S, Dtext]. wordEmbeddings: per attribute with `tokenIds`, the LLM's embeddings
   * of those tokens [classes, Dtext] (undefined for the others); each adds probabilities · embeddings to its slot's token,
   * times the slot's `wordWeights` [B, S] when given (so that a slot holding no object says no words). Default 1.
   */
  codeTokens(
    predictions: TrackPredictions,
    wordEmbeddings: readonly (tf.Tensor | undefined)[] = [],
    wordWeights?: tf.Tensor,
  ): tf.Tensor3D {
    if (!this.codeProjection) throw new Error("VideoTrackHead: built without code tokens (config.codeTokens false)");
    const speaking = this.config.attributes.filter((a) => a.tokenIds).length;
    if (wordEmbeddings.filter((e) => e).length !== speaking)
      throw new Error(
        `VideoTrackHead: ${speaking} attributes have token ids but ${wordEmbeddings.filter((e) => e).length} word embeddings were given`,
      );
    const width = this.codeProjection.outFeatures;
    this.config.attributes.forEach((a, k) => {
      const words = wordEmbeddings[k];
      if (!a.tokenIds !== !words)
        throw new Error(
          `VideoTrackHead: attribute ${k} ("${a.name}") ${a.tokenIds ? "has token ids but no" : "has no token ids but"} word embeddings`,
        );
      if (words && (words.rank !== 2 || words.shape[0] !== a.classes || words.shape[1] !== width))
        throw new Error(`VideoTrackHead: the "${a.name}" word embeddings must be [${a.classes}, ${width}], got [${words.shape}]`);
    });
    if (wordWeights && (wordWeights.rank !== 2 || wordWeights.shape.some((d, k) => d !== predictions.visibility.shape[k])))
      throw new Error(
        `VideoTrackHead: wordWeights must be [${predictions.visibility.shape.slice(0, 2)}] (one per slot), got [${wordWeights.shape}]`,
      );
    return tf.tidy(() => {
      const [B, S, F] = predictions.visibility.shape;
      const probabilities = predictions.attributes.map((logits) => tf.softmax(logits)); // each [B, S, classes]
      const visible = tf.sigmoid(predictions.visibility); // [B, S, F]
      const parts = [...probabilities, visible.mean(2, true)];
      if (this.config.codeTimeline) parts.push(visible, predictions.position.reshape([B, S, 2 * F])); // [B, S, F], [B, S, 2F]: x0, y0, x1, …
      const code = tf.concat(parts, 2); // [B, S, C]: each slot's attribute probabilities, how often (and when, where) it is visible
      let tokens = this.codeProjection!.apply(code.reshape([B * S, this.codeWidth])).reshape([B, S, -1]); // [B, S, Dtext]
      probabilities.forEach((p, k) => {
        const words = wordEmbeddings[k];
        if (!words) return;
        const expected = p
          .reshape([B * S, -1])
          .matMul(words)
          .reshape([B, S, -1]); // [B, S, Dtext]: the expected word embedding
        tokens = tokens.add(wordWeights ? expected.mul(wordWeights.expandDims(2)) : expected);
      });
      return tokens as tf.Tensor3D;
    });
  }

  /**
   * The set loss: for every slot s and object o, cost(s, o) = visibility cross-entropy + for a real object
   * (positionWeight · the squared distance between predicted and true position, averaged over its visible frames + each
   * attribute's cross-entropy); each clip takes the assignment with the least total cost.
   */
  setLoss(predictions: TrackPredictions, targets: TrackTargets): TrackSetLoss {
    const { slots: S, frames: F } = this.config;
    const [B] = predictions.visibility.shape;
    const expect = (name: string, t: tf.Tensor, shape: number[]) => {
      if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k]))
        throw new Error(`VideoTrackHead: targets.${name} must be [${shape}], got [${t.shape}]`);
    };
    expect("position", targets.position, [B, S, F, 2]);
    expect("visible", targets.visible, [B, S, F]);
    expect("exists", targets.exists, [B, S]);
    if (targets.attributes.length !== this.config.attributes.length)
      throw new Error(
        `VideoTrackHead: ${targets.attributes.length} target attributes for a head of ${this.config.attributes.length}`,
      );
    targets.attributes.forEach((t, k) => expect(`attributes[${k}]`, t, [B, S]));
    return tf.tidy(() => {
      const take = (x: tf.Tensor, index: number) => x.slice([0, index], [B, 1]).squeeze([1]); // slot or object `index`
      const cost = Array.from({ length: S }, (_, slot) =>
        Array.from({ length: S }, (_, object) => {
          const visible = take(targets.visible, object); // [B, F]
          const exists = take(targets.exists, object); // [B]
          const squared = take(predictions.position, slot)
            .sub(take(targets.position, object))
            .square()
            .sum(2)
            .mul(visible)
            .sum(1)
            .div(visible.sum(1).maximum(1)); // [B]: mean squared error over the visible frames
          const visibility = tf.losses
            .sigmoidCrossEntropy(visible, take(predictions.visibility, slot), undefined, 0, tf.Reduction.NONE)
            .mean(1); // [B]
          const classes = this.config.attributes
            .map((a, k) =>
              tf.losses.softmaxCrossEntropy(
                tf.oneHot(take(targets.attributes[k], object).cast("int32"), a.classes),
                take(predictions.attributes[k], slot),
                undefined,
                undefined,
                tf.Reduction.NONE,
              ),
            )
            .reduce((sum, x) => sum.add(x)); // [B]
          const geometry = visibility.add(exists.mul(squared.mul(this.config.positionWeight))); // [B]
          return { total: geometry.add(exists.mul(classes)), geometry };
        }),
      );
      const permutations = slotPermutations(S);
      const assignmentCost = (part: "total" | "geometry") =>
        tf.stack(
          permutations.map((p) => p.map((object, slot) => cost[slot][object][part]).reduce((sum, x) => sum.add(x))),
          1,
        ); // [B, permutations]
      return {
        loss: assignmentCost("total").min(1) as tf.Tensor1D,
        assignment: assignmentCost("geometry").argMin(1).cast("int32") as tf.Tensor1D,
      };
    });
  }
}
