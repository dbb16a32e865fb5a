/**
 * Logits processors for generation: the repetition penalty and the
 * no-repeat-n-gram ban, applied to one row of next-token scores [V] before
 * the token is chosen (greedy, sampled, or beam search's log-probabilities),
 * as transformers' `LogitsProcessorList` applies them before its warpers
 * (temperature, top-k, top-p: `sampling.ts`).
 *
 * Papers: Keskar et al., "CTRL: A Conditional Transformer Language Model for
 * Controllable Generation" (2019, the repetition penalty); Paulus et al.,
 * "A Deep Reinforced Model for Abstractive Summarization" (2017, blocking
 * repeated trigrams).
 * Reference: transformers `generation/logits_process.py`
 * (`RepetitionPenaltyLogitsProcessor`, `NoRepeatNGramLogitsProcessor`).
 *
 * The context is every token the row holds so far: the prompt ids (when the
 * prompt was given as ids) and the generated ones, as transformers passes
 * `input_ids` to its processors.
 */

/** Penalties applied to the next-token scores. Both default off. */
export interface LogitsProcessorOptions {
  /**
   * CTRL's penalty θ for tokens already in the context: a positive score is
   * divided by θ, a negative one multiplied by it (each token once, however
   * often it occurs). 1 = off (default); > 1 discourages repeats.
   */
  repetitionPenalty?: number;
  /** No n-gram of this size occurs twice: tokens that would complete a repeat get −∞. 0 = off (default). */
  noRepeatNgramSize?: number;
}

/** Throws for a penalty that no run can honour, quoting the value. */
export function validateLogitsProcessorOptions(options: LogitsProcessorOptions, who = "generate"): void {
  const { repetitionPenalty, noRepeatNgramSize } = options;
  if (
    repetitionPenalty !== undefined &&
    !(typeof repetitionPenalty === "number" && Number.isFinite(repetitionPenalty) && repetitionPenalty > 0)
  )
    throw new Error(`${who}: repetitionPenalty must be a finite number > 0 (1 = off), got ${JSON.stringify(repetitionPenalty)}`);
  if (noRepeatNgramSize !== undefined && !(Number.isInteger(noRepeatNgramSize) && noRepeatNgramSize >= 0))
    throw new Error(`${who}: noRepeatNgramSize must be an integer ≥ 0 (0 = off), got ${JSON.stringify(noRepeatNgramSize)}`);
}

/** True when `options` change any score (so callers can skip the copy). */
export function hasLogitsProcessors(options: LogitsProcessorOptions): boolean {
  return (options.repetitionPenalty ?? 1) !== 1 || (options.noRepeatNgramSize ?? 0) > 0;
}

/**
 * CTRL's repetition penalty, in place. scores: [V]; context: the row's tokens so far.
 * HF: `RepetitionPenaltyLogitsProcessor` (gather, `where(score < 0, score·θ, score/θ)`, scatter).
 */
export function applyRepetitionPenalty(scores: Float32Array, context: readonly number[], penalty: number): void {
  if (penalty === 1) return;
  for (const token of new Set(context)) {
    if (token < 0 || token >= scores.length) continue; // placeholders outside the vocabulary (e.g. LLaVA's <image>)
    const score = scores[token];
    scores[token] = score < 0 ? score * penalty : score / penalty;
  }
}

/**
 * The tokens that would repeat an n-gram of `context`: those that followed an
 * earlier occurrence of the context's last n − 1 tokens.
 * HF: `_get_ngrams` + `_get_generated_ngrams` (no ban before the row holds n − 1 tokens).
 */
export function bannedNgramTokens(context: readonly number[], n: number): number[] {
  if (n <= 0 || context.length + 1 < n) return [];
  const prefix = context.slice(context.length - (n - 1)); // the last n − 1 tokens
  const banned = new Set<number>();
  for (let start = 0; start + n <= context.length; start++) {
    let matches = true;
    for (let k = 0; k < n - 1 && matches; k++) matches = context[start + k] === prefix[k];
    if (matches) banned.add(context[start + n - 1]);
  }
  return [...banned];
}

/** Sets the scores of {@link bannedNgramTokens} to −∞, in place. HF: `NoRepeatNGramLogitsProcessor`. */
export function applyNoRepeatNgram(scores: Float32Array, context: readonly number[], n: number): void {
  for (const token of bannedNgramTokens(context, n)) if (token >= 0 && token < scores.length) scores[token] = -Infinity;
}

/** Both processors in transformers' order (repetition penalty, then the n-gram ban), in place. scores: [V]. */
export function processLogits(scores: Float32Array, context: readonly number[], options: LogitsProcessorOptions): void {
  applyRepetitionPenalty(scores, context, options.repetitionPenalty ?? 1);
  applyNoRepeatNgram(scores, context, options.noRepeatNgramSize ?? 0);
}

/** log_softmax of one row, in place: scores − logsumexp(scores). scores: [V]. */
export function logSoftmaxInPlace(scores: Float32Array): void {
  let maximum = -Infinity;
  for (const value of scores) if (value > maximum) maximum = value;
  let total = 0;
  for (const value of scores) total += Math.exp(value - maximum);
  const logTotal = maximum + Math.log(total);
  for (let i = 0; i < scores.length; i++) scores[i] -= logTotal;
}
