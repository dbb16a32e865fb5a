/**
 * Beam search over a model's next-token log-probabilities, with the length
 * penalty and stopping rules of transformers' `BeamSearchScorer`: each batch
 * row keeps K = numBeams open beams; every step scores the 2K best
 * continuations of all beams (log-probabilities summed), a continuation that
 * ends with a stop token among the K best becomes a finished hypothesis with
 * score = Σ log p / (new tokens, the stop token included)^lengthPenalty, the
 * others are the next open beams; at the end the open beams join the
 * hypotheses and the best score wins.
 *
 * Papers: Graves, "Sequence Transduction with Recurrent Neural Networks"
 * (2012); Wu et al., "Google's Neural Machine Translation System" (2016, the
 * length penalty).
 * Reference: transformers `generation/beam_search.py` (`BeamSearchScorer`,
 * `BeamHypotheses`: lengths count generated tokens only, `decoder_prompt_len`)
 * and `generation/utils.py` (`_beam_search`: log_softmax, then the logits
 * processors, then + beam scores; beams 1…K−1 start at −1e9 so the first
 * step expands beam 0 only).
 *
 * The model is reached through a {@link BeamStep} callback, so the search is
 * the same for a cached or uncached model and testable on scripted logits.
 */
import { processLogits, logSoftmaxInPlace, type LogitsProcessorOptions } from "./logits_processors";

/** When a batch row's search ends (transformers' `early_stopping`). */
export type EarlyStopping = boolean | "never";

/** Options of {@link beamSearch}. */
export interface BeamSearchOptions extends LogitsProcessorOptions {
  /** Beams K per batch row (> 1). */
  numBeams: number;
  /** New tokens at most. */
  maxNewTokens: number;
  /** Exponent of the length in score = Σ log p / length^lengthPenalty. > 0 favours longer, < 0 shorter. Default 1 (transformers'). */
  lengthPenalty?: number;
  /**
   * true: stop a row when K hypotheses are finished; false (default, transformers'):
   * also stop when the best open beam, scored at the current length, cannot beat
   * the worst finished one; "never": only when no open beam can (at the
   * longest length when lengthPenalty > 0).
   */
  earlyStopping?: EarlyStopping;
  /** Ids that finish a hypothesis. Default none. */
  stopTokens?: readonly number[];
  /** Written after a finished row. Default 0. */
  padTokenId?: number;
}

/** What {@link beamSearch} returns, one entry per batch row. */
export interface BeamSearchResult {
  /** New tokens of the best hypothesis (the stop token included when it ended with one). */
  tokens: number[][];
  /** Its score: Σ log p / length^lengthPenalty. */
  scores: number[];
}

/**
 * Returns the next-token logits [N, V] (flattened row-major) of N = B·K rows.
 * First call: `origins` and `tokens` undefined; rows are the prompt, repeated
 * K times per batch row (row b·K + k is beam k of batch row b). Later calls:
 * row i now continues row `origins[i]` of the previous call with `tokens[i]`
 * appended (the model reorders its cache by `origins`).
 */
export type BeamStep = (origins?: readonly number[], tokens?: readonly number[]) => Promise<Float32Array>;

/** One finished hypothesis. */
interface Hypothesis {
  score: number;
  tokens: number[];
}

/** The K best finished hypotheses of one batch row (HF: `BeamHypotheses`). */
class Hypotheses {
  readonly beams: Hypothesis[] = [];
  private worstScore = 1e9;

  constructor(
    private readonly numBeams: number,
    private readonly lengthPenalty: number,
    private readonly earlyStopping: EarlyStopping,
    private readonly maxNewTokens: number,
  ) {}

  /** Adds a hypothesis of `tokens.length` new tokens whose log-probabilities sum to `sumLogprobs`, if it ranks among the K best. */
  add(tokens: number[], sumLogprobs: number): void {
    const score = sumLogprobs / tokens.length ** this.lengthPenalty;
    if (this.beams.length < this.numBeams || score > this.worstScore) {
      this.beams.push({ score, tokens });
      if (this.beams.length > this.numBeams) {
        const sorted = this.beams.map((beam, index) => ({ score: beam.score, index })).sort((a, b) => a.score - b.score);
        this.beams.splice(sorted[0].index, 1);
        this.worstScore = sorted[1].score;
      } else {
        this.worstScore = Math.min(score, this.worstScore);
      }
    }
  }

  /** Whether no open beam can still improve the list; `bestSumLogprobs` of the best open continuation at `length` new tokens. */
  isDone(bestSumLogprobs: number, length: number): boolean {
    if (this.beams.length < this.numBeams) return false;
    if (this.earlyStopping === true) return true;
    const bound =
      this.earlyStopping === "never" && this.lengthPenalty > 0
        ? bestSumLogprobs / this.maxNewTokens ** this.lengthPenalty
        : bestSumLogprobs / length ** this.lengthPenalty;
    return this.worstScore >= bound;
  }

  best(): Hypothesis {
    return this.beams.reduce((best, beam) => (beam.score > best.score ? beam : best));
  }
}

/** Throws for beam options no run can honour, quoting the value. */
export function validateBeamSearchOptions(
  options: Partial<Pick<BeamSearchOptions, "numBeams" | "lengthPenalty" | "earlyStopping">>,
  who = "generate",
): void {
  const { numBeams, lengthPenalty, earlyStopping } = options;
  if (numBeams !== undefined && !(Number.isInteger(numBeams) && numBeams >= 1))
    throw new Error(`${who}: numBeams must be a positive integer (1 = no beam search), got ${JSON.stringify(numBeams)}`);
  if (lengthPenalty !== undefined && !(typeof lengthPenalty === "number" && Number.isFinite(lengthPenalty)))
    throw new Error(`${who}: lengthPenalty must be a finite number, got ${JSON.stringify(lengthPenalty)}`);
  if (earlyStopping !== undefined && earlyStopping !== true && earlyStopping !== false && earlyStopping !== "never")
    throw new Error(`${who}: earlyStopping must be true, false or "never", got ${JSON.stringify(earlyStopping)}`);
}

/**
 * Beam search for B batch rows over a vocabulary of V tokens.
 * @param step the model (see {@link BeamStep})
 * @param contexts per batch row, the prompt ids the logits processors count (empty for an embeddings prompt)
 */
export async function beamSearch(
  step: BeamStep,
  contexts: readonly (readonly number[])[],
  vocabSize: number,
  options: BeamSearchOptions,
): Promise<BeamSearchResult> {
  validateBeamSearchOptions(options, "beamSearch");
  const { numBeams: K, maxNewTokens } = options;
  if (K < 2) throw new Error(`beamSearch: numBeams must be ≥ 2, got ${K}`);
  const B = contexts.length;
  const V = vocabSize;
  const stop = new Set(options.stopTokens ?? []);
  const pad = options.padTokenId ?? 0;
  const hypotheses = contexts.map(
    () => new Hypotheses(K, options.lengthPenalty ?? 1, options.earlyStopping ?? false, maxNewTokens),
  );
  const done = new Array<boolean>(B).fill(false);
  // Open beams: new tokens and summed log-probabilities, row b·K + k. Beams 1…K−1 start at −1e9 (all beams hold the same prompt).
  let beamTokens: number[][] = Array.from({ length: B * K }, () => []);
  let beamScores: number[] = Array.from({ length: B * K }, (_, row) => (row % K === 0 ? 0 : -1e9));
  const candidates = Math.max(2, 1 + stop.size) * K; // HF: n_tokens_to_keep
  let logits = await step();
  for (let length = 1; ; length++) {
    if (logits.length !== B * K * V)
      throw new Error(
        `beamSearch: the step returned ${logits.length} scores, expected ${B * K} rows × ${V} tokens = ${B * K * V}`,
      );
    const origins: number[] = [];
    const tokens: number[] = [];
    const nextScores: number[] = [];
    for (let b = 0; b < B; b++) {
      if (done[b]) {
        for (let k = 0; k < K; k++) {
          origins.push(b * K);
          tokens.push(pad);
          nextScores.push(0);
        }
        continue;
      }
      // Scores of every (beam, token) continuation: log_softmax, processors, + the beam's score. [K·V]
      const flat = new Float32Array(K * V);
      for (let k = 0; k < K; k++) {
        const row = b * K + k;
        const scores = logits.slice(row * V, (row + 1) * V);
        logSoftmaxInPlace(scores);
        processLogits(scores, [...contexts[b], ...beamTokens[row]], options);
        for (let v = 0; v < V; v++) flat[k * V + v] = scores[v] + beamScores[row];
      }
      const order = topIndices(flat, candidates);
      let kept = 0;
      for (let rank = 0; rank < order.length && kept < K; rank++) {
        const index = order[rank];
        const row = b * K + Math.floor(index / V);
        const token = index % V;
        const score = flat[index];
        if (stop.has(token)) {
          if (rank < K) hypotheses[b].add([...beamTokens[row], token], score); // only a top-K stop counts
          continue;
        }
        origins.push(row);
        tokens.push(token);
        nextScores.push(score);
        kept++;
      }
      if (kept < K) throw new Error(`beamSearch: fewer than ${K} continuations of batch row ${b} are not stop tokens`);
      done[b] = hypotheses[b].isDone(flat[order[0]], length);
    }
    beamTokens = origins.map((row, i) => [...beamTokens[row], tokens[i]]);
    beamScores = nextScores;
    if (done.every(Boolean) || length >= maxNewTokens) break;
    logits = await step(origins, tokens);
  }
  // Open beams of unfinished rows join their hypotheses; the best of each row wins.
  for (let b = 0; b < B; b++) {
    if (done[b]) continue;
    for (let k = 0; k < K; k++) hypotheses[b].add(beamTokens[b * K + k], beamScores[b * K + k]);
  }
  const best = hypotheses.map((list) => list.best());
  return { tokens: best.map((hypothesis) => hypothesis.tokens), scores: best.map((hypothesis) => hypothesis.score) };
}

/** Indices of the `count` largest values, largest first; ties go to the lower index. */
function topIndices(values: Float32Array, count: number): number[] {
  const indices = Array.from({ length: values.length }, (_, i) => i);
  indices.sort((a, b) => values[b] - values[a] || a - b);
  return indices.slice(0, Math.min(count, values.length));
}
