/**
 * Choosing the next token from logits: greedy, or sampling with temperature,
 * top-k and top-p (nucleus), applied in that order as transformers' logits
 * warpers are.
 *
 * Papers: Fan et al., "Hierarchical Neural Story Generation" (top-k, 2018);
 * Holtzman et al., "The Curious Case of Neural Text Degeneration" (top-p, 2019).
 * Reference: transformers `generation/logits_process.py`
 * (`TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`).
 */
import type { Random } from "../util/random";

/** How to pick a token. */
export interface SamplingOptions {
  /** 0 (default) = greedy argmax; > 0 divides the logits before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens. Default off. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (at least one). Default off (1). */
  topP?: number;
  /** Seed of the sampler. Default 0. */
  seed?: number;
}

/** The first index of the largest value (torch's argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** One token id from one row of logits [V]. */
export function sampleToken(logits: Float32Array, options: SamplingOptions, random: Random): number {
  const temperature = options.temperature ?? 0;
  if (!(temperature >= 0)) throw new Error(`sampling: temperature must be ≥ 0, got ${temperature}`);
  if (temperature === 0) return argmax(logits);
  const V = logits.length;
  const topK = Math.min(options.topK ?? V, V);
  const topP = options.topP ?? 1;
  if (!Number.isInteger(topK) || topK < 1) throw new Error(`sampling: topK must be a positive integer, got ${options.topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`sampling: topP must be in (0, 1], got ${topP}`);
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const kept = order.slice(0, topK);
  const maximum = logits[kept[0]] / temperature;
  let weights = kept.map((i) => Math.exp(logits[i] / temperature - maximum));
  let total = weights.reduce((sum, w) => sum + w, 0);
  if (topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < kept.length && cumulative < topP * total) cumulative += weights[keep++];
    weights = weights.slice(0, Math.max(1, keep));
    total = weights.reduce((sum, w) => sum + w, 0);
  }
  let draw = random.next() * total;
  for (let i = 0; i < weights.length; i++) {
    draw -= weights[i];
    if (draw < 0) return kept[i];
  }
  return kept[weights.length - 1];
}
