/**
 * BLIP-2's objectives, each a small function with its attention mask:
 * stage 1's image-text contrastive (ITC), image-text matching (ITM, with hard
 * negatives) and image-grounded text generation (ITG), and stage 2's soft
 * prompt for the frozen LLM with its masked labels.
 *
 * Paper: Li et al., "BLIP-2" (2023), §3.2 and Fig. 2 (right: the three masks); §3.3.
 * Reference: salesforce/LAVIS `lavis/models/blip2_models/blip2_qformer.py`
 * (`Blip2Qformer.forward`: `sim_i2t = sim_q2t.max(-1)`, `weights_t2i.fill_diagonal_(0)`,
 * `torch.multinomial`, `itm_head(...).mean(dim=1)`); `blip2_opt.py` (prefix
 * `inputs_opt`, `empty_targets = -100`); transformers `Blip2ForConditionalGeneration`.
 *
 * Masks are additive biases [B, 1, Nq + T, Nq + T] over the sequence
 * [queries; text]: 0 where a row may attend to a column, −1e9 where not.
 * Padded text keys are never seen.
 */
import * as tf from "@tensorflow/tfjs";
import { tidy } from "../util/tidy";
import { Random } from "../util/random";

const MASKED = -1e9;

/** Which (row, column) pairs of [queries; text] may attend, as 0/1 [B, 1, L, L]; `rule` decides among non-padding keys. */
function sequenceMask(
  numQueries: number,
  textPadding: tf.Tensor,
  rule: "unimodal" | "bidirectional" | "multimodal-causal",
): tf.Tensor {
  if (textPadding.rank !== 2)
    throw new Error(`BLIP-2 mask: textPadding must be [B, T] (1 real token, 0 padding), got [${textPadding.shape}]`);
  if (!(Number.isInteger(numQueries) && numQueries >= 0))
    throw new Error(`BLIP-2 mask: numQueries must be a non-negative integer, got ${numQueries}`);
  const [B, T] = textPadding.shape;
  const Nq = numQueries;
  const L = Nq + T;
  const allowed = new Float32Array(L * L); // the pattern before padding, [L, L]
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const rowIsQuery = i < Nq;
      const colIsQuery = j < Nq;
      let ok: boolean;
      if (rule === "bidirectional") ok = true;
      else if (rule === "unimodal")
        ok = rowIsQuery === colIsQuery; // queries ↔ queries, text ↔ text
      else ok = colIsQuery || (!rowIsQuery && j <= i); // queries see queries; text sees queries and earlier text
      allowed[i * L + j] = ok ? 1 : 0;
    }
  }
  return tf.tidy(() => {
    const keys = tf.concat([tf.ones([B, Nq]), textPadding.toFloat()], 1).reshape([B, 1, 1, L]); // [B, 1, 1, L]
    return tf.tensor2d(allowed, [L, L]).mul(keys); // [B, 1, L, L]
  });
}

/** 0/1 pattern → additive bias. */
function toBias(allowed: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(1, allowed).mul(MASKED));
}

/**
 * ITC's mask (BLIP-2 Fig. 2, "uni-modal self-attention mask"): queries see only
 * queries, text sees only text, so the two are encoded apart and compared.
 * textPadding: [B, T] (1 real, 0 padding) → additive [B, 1, Nq + T, Nq + T]
 */
export function itcAttentionMask(numQueries: number, textPadding: tf.Tensor): tf.Tensor {
  return tf.tidy(() => toBias(sequenceMask(numQueries, textPadding, "unimodal")));
}

/** ITM's mask ("bi-directional"): every position sees every query and every real text token. → additive [B, 1, Nq + T, Nq + T] */
export function itmAttentionMask(numQueries: number, textPadding: tf.Tensor): tf.Tensor {
  return tf.tidy(() => toBias(sequenceMask(numQueries, textPadding, "bidirectional")));
}

/** ITG's mask ("multi-modal causal", UniLM's): queries see queries only; text token i sees every query and text tokens ≤ i. → additive [B, 1, Nq + T, Nq + T] */
export function itgAttentionMask(numQueries: number, textPadding: tf.Tensor): tf.Tensor {
  return tf.tidy(() => toBias(sequenceMask(numQueries, textPadding, "multimodal-causal")));
}

/**
 * ITC similarities: for each image i and text j, the highest similarity over
 * the image's Nq query embeddings with the text's [CLS] embedding, divided by
 * the temperature. imageFeatures: [B, Nq, E] and textFeatures: [B, E], both
 * L2-normalised; temperature: a scalar (tensor or number) → [B, B] (row: image, column: text)
 */
export function itcSimilarity(imageFeatures: tf.Tensor, textFeatures: tf.Tensor, temperature: tf.Tensor | number): tf.Tensor2D {
  const [B, Nq, E] = imageFeatures.shape;
  if (textFeatures.rank !== 2 || textFeatures.shape[1] !== E)
    throw new Error(`ITC: textFeatures must be [B, ${E}], got [${textFeatures.shape}]`);
  return tf.tidy(() => {
    const perQuery = tf.matMul(imageFeatures.reshape([B * Nq, E]), textFeatures, false, true); // [B·Nq, E]·[Bt, E]ᵀ → [B·Nq, Bt]
    return perQuery
      .reshape([B, Nq, textFeatures.shape[0] as number])
      .max(1)
      .div(temperature) as tf.Tensor2D; // [B, Bt]
  });
}

/**
 * The ITC loss: cross-entropy image→text and text→image over the batch,
 * averaged. `targets` [B, B] (rows summing to 1) default to the identity; give
 * multi-positive targets when texts repeat (an image's target spread over
 * every text identical to its own).
 */
export function itcLoss(
  imageFeatures: tf.Tensor,
  textFeatures: tf.Tensor,
  temperature: tf.Tensor | number,
  targets?: tf.Tensor,
): tf.Scalar {
  return tf.tidy(() => {
    const sim = itcSimilarity(imageFeatures, textFeatures, temperature); // [B, B]
    const B = sim.shape[0];
    const t = targets ?? tf.eye(B);
    const imageToText = tf.logSoftmax(sim).mul(t).sum(1).neg().mean();
    const textToImage = tf.logSoftmax(sim.transpose()).mul(t.transpose()).sum(1).neg().mean();
    return imageToText.add(textToImage).div(2) as tf.Scalar;
  });
}

/**
 * ITM hard negatives: for each row (an image, or a text), one column drawn with
 * probability ∝ exp(similarity) among the columns that are NOT positives of
 * that row (its own pair and, with repeated captions, identical texts).
 * similarity: row-major [rows × columns] (e.g. `await sim.data()`), `columns` wide;
 * isPositive(row, column) says which are excluded. Seeded by `random`.
 * A row without any negative is an error (the batch has nothing to tell apart).
 */
export function sampleHardNegatives(
  similarity: ArrayLike<number>,
  columns: number,
  isPositive: (row: number, column: number) => boolean,
  random: Random,
): number[] {
  if (!(Number.isInteger(columns) && columns > 0) || similarity.length % columns !== 0)
    throw new Error(`sampleHardNegatives: ${similarity.length} similarities do not make rows of ${columns} columns`);
  const rows = similarity.length / columns;
  const out: number[] = [];
  for (let row = 0; row < rows; row++) {
    let best = -Infinity;
    for (let c = 0; c < columns; c++) if (!isPositive(row, c)) best = Math.max(best, similarity[row * columns + c]);
    if (best === -Infinity)
      throw new Error(`sampleHardNegatives: row ${row} has no negative (every one of its ${columns} columns is a positive)`);
    const weights: number[] = [];
    let total = 0;
    for (let c = 0; c < columns; c++) {
      const w = isPositive(row, c) ? 0 : Math.exp(similarity[row * columns + c] - best); // softmax over the negatives, stable
      weights.push(w);
      total += w;
    }
    let u = random.next() * total;
    let pick = -1;
    for (let c = 0; c < columns; c++) {
      if (weights[c] === 0) continue;
      pick = c;
      u -= weights[c];
      if (u < 0) break;
    }
    out.push(pick);
  }
  return out;
}

/**
 * The ITM loss: the 2-way head's logits averaged over the query outputs, cross-entropy
 * against match (1) / no match (0). queryOutputs: [N, Nq, Dq] from the ITM pass
 * (bi-directional mask); head: [.., Dq] → [.., 2]; labels: [N] int32.
 * Returns the loss and the logits [N, 2].
 */
export function itmLoss(
  queryOutputs: tf.Tensor,
  head: (x: tf.Tensor) => tf.Tensor,
  labels: tf.Tensor,
): { loss: tf.Scalar; logits: tf.Tensor2D } {
  return tidy<{ loss: tf.Scalar; logits: tf.Tensor2D }>(() => {
    const logits = head(queryOutputs).mean(1) as tf.Tensor2D; // [N, Nq, 2] → [N, 2]
    const loss = tf
      .logSoftmax(logits)
      .mul(tf.oneHot(labels, 2, 1, 0, "float32"))
      .sum(1)
      .neg()
      .mean() as tf.Scalar;
    return { loss, logits };
  });
}

/**
 * Next-token cross-entropy where `labels` [B, L] int32 hold −100 for positions
 * that do not count (prompt, queries, padding), as transformers' causal-LM
 * loss: logits [B, L, V] at position t predict labels at t + 1.
 */
export function shiftedLanguageModelLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const { logProbs, counted } = countedNextTokenLogProbs(logits, labels);
    return logProbs.sum().div(counted.sum().maximum(1)).neg() as tf.Scalar;
  });
}

/**
 * Each row's log-likelihood of its counted tokens (labels ≠ −100), summed: the same shift as
 * {@link shiftedLanguageModelLoss}, per row. logits [B, L, V], labels [B, L] → [B]. Scores a candidate answer
 * (multiple-choice questions, as lm-evaluation-harness does).
 */
export function shiftedTokenLogLikelihoods(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => countedNextTokenLogProbs(logits, labels).logProbs.sum(1) as tf.Tensor1D);
}

/** logits [B, L, V], labels [B, L] → the log-probability of each next label [B, L − 1], 0 where it does not count, and where it counts. */
function countedNextTokenLogProbs(logits: tf.Tensor, labels: tf.Tensor): { logProbs: tf.Tensor2D; counted: tf.Tensor2D } {
  const [B, L, V] = logits.shape;
  if (labels.shape[0] !== B || labels.shape[1] !== L)
    throw new Error(`LM loss: labels [${labels.shape}] do not match logits [${logits.shape}]`);
  return tf.tidy(() => {
    const predicted = logits.slice([0, 0, 0], [B, L - 1, V]); // [B, L − 1, V]: position t predicts label t + 1
    const next = labels.slice([0, 1], [B, L - 1]); // [B, L − 1]
    const counts = next.notEqual(-100); // [B, L − 1]
    const targets = tf.where(counts, next, tf.zerosLike(next)).cast("int32"); // −100 → 0 (weight 0)
    const counted = counts.toFloat() as tf.Tensor2D;
    const logProbs = tf
      .logSoftmax(predicted)
      .mul(tf.oneHot(targets, V, 1, 0, "float32"))
      .sum(-1)
      .mul(counted) as tf.Tensor2D; // [B, L − 1]
    return { logProbs, counted };
  });
}

/**
 * The ITG loss: the text decoder (ITG mask) predicts each next text token.
 * logits: [B, T, V] for the text positions; inputIds, textPadding: [B, T].
 */
export function itgLoss(logits: tf.Tensor, inputIds: tf.Tensor, textPadding: tf.Tensor): tf.Scalar {
  return tf.tidy(() =>
    shiftedLanguageModelLoss(logits, tf.where(textPadding.equal(1), inputIds, tf.fill(inputIds.shape, -100, "int32"))),
  );
}

/** What {@link assembleSoftPrompt} returns. */
export interface SoftPrompt {
  /** [B, Nq + T, D]: the projected queries, then the text's embeddings. */
  inputsEmbeds: tf.Tensor;
  /** [B, Nq + T] int32: 1 for the queries and real text, 0 for text padding. */
  attentionMask: tf.Tensor;
  /** [B, Nq + T] int32: −100 on the queries (and wherever the text labels say so), else the text labels. Present when labels are given. */
  labels?: tf.Tensor;
}

/**
 * Stage 2's soft prompt: the Q-Former outputs, projected to the LLM's width,
 * go in front of the text embeddings; the queries are always attended to and
 * never predicted. projectedQueries: [B, Nq, D]; textEmbeds: [B, T, D];
 * textMask: [B, T] (1 real, 0 padding); textLabels: [B, T] int32 (−100 where
 * not to learn: the prompt and padding).
 */
export function assembleSoftPrompt(
  projectedQueries: tf.Tensor,
  textEmbeds: tf.Tensor,
  textMask: tf.Tensor,
  textLabels?: tf.Tensor,
): SoftPrompt {
  const [B, Nq, D] = projectedQueries.shape;
  if (textEmbeds.rank !== 3 || textEmbeds.shape[0] !== B || textEmbeds.shape[2] !== D)
    throw new Error(
      `soft prompt: textEmbeds must be [${B}, T, ${D}] like the queries [${projectedQueries.shape}], got [${textEmbeds.shape}]`,
    );
  const T = textEmbeds.shape[1] as number;
  if (textMask.shape[0] !== B || textMask.shape[1] !== T)
    throw new Error(`soft prompt: textMask must be [${B}, ${T}], got [${textMask.shape}]`);
  return tidy<SoftPrompt>(() => {
    const inputsEmbeds = tf.concat([projectedQueries, textEmbeds], 1); // [B, Nq + T, D]
    const attentionMask = tf.concat([tf.ones([B, Nq], "int32"), textMask.toInt()], 1); // [B, Nq + T]
    if (!textLabels) return { inputsEmbeds, attentionMask };
    const labels = tf.concat([tf.fill([B, Nq], -100, "int32"), textLabels.toInt()], 1); // [B, Nq + T]
    return { inputsEmbeds, attentionMask, labels };
  });
}
