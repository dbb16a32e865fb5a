/**
 * CIDEr-D: consensus between a candidate caption and an image's reference
 * captions, with n-grams weighted by TF-IDF over the evaluated corpus.
 *
 * Paper: Vedantam, Zitnick and Parikh, "CIDEr: Consensus-based Image
 * Description Evaluation" (CVPR 2015); the "-D" changes (clipping, length
 * penalty, ×10) from the coco-caption server.
 * Reference: coco-caption / pycocoevalcap `pycocoevalcap/cider/cider.py` and
 * `cider_scorer.py` (`CiderScorer.compute_doc_freq`, `compute_cider`).
 *
 * For image i with candidate c and references s_1..s_m, for n = 1..N:
 *   g_n(x)[w] = tf_x(w) · (log |I| − log max(1, df(w)))
 *       tf_x(w): count of n-gram w in x; df(w): number of images whose
 *       references contain w (references only, of this corpus); |I|: images.
 *   sim_n(c, s) = Σ_w min(g_n(c)[w], g_n(s)[w]) · g_n(s)[w] / (‖g_n(c)‖ ‖g_n(s)‖)
 *       (0 when a norm is 0) · exp(−(ℓ(c) − ℓ(s))² / (2σ²)), σ = 6,
 *       ℓ(x) = number of bigrams of x: pycocoevalcap counts `length` inside
 *       its n-gram loop at n-gram index 1, i.e. over bigrams (= words − 1, so
 *       ℓ(c) − ℓ(s) is the difference in words whenever both are non-empty).
 *   CIDEr-D(i) = 10 · (1/N) Σ_n (1/m) Σ_j sim_n(c, s_j)
 *   CIDEr-D = mean over images.
 * With a single image, log |I| = 0 = log max(1, df) for every n-gram, so all
 * weights and the score are 0: CIDEr-D needs a corpus of several images, and
 * an n-gram found in every image's references weighs nothing.
 */
import { countNgramsUpTo, tokenizeCorpus, type NgramCounts } from "./ngrams";

/** Options of {@link ciderD}. */
export interface CiderDArgs {
  /** Largest n-gram order N. Default 4, as pycocoevalcap. */
  readonly maxN?: number;
  /** σ of the Gaussian length penalty, in tokens. Default 6, as pycocoevalcap. */
  readonly sigma?: number;
}

type ResolvedCiderDArgs = Required<CiderDArgs>;

function resolveArgs(args: CiderDArgs): ResolvedCiderDArgs {
  const resolved = { maxN: args.maxN ?? 4, sigma: args.sigma ?? 6 };
  if (!Number.isInteger(resolved.maxN) || resolved.maxN < 1)
    throw new Error(`ciderD: maxN must be an integer ≥ 1, got ${resolved.maxN}`);
  if (!(resolved.sigma > 0)) throw new Error(`ciderD: sigma must be > 0, got ${resolved.sigma}`);
  return resolved;
}

/** A caption as CIDEr-D compares it: per order, its TF-IDF weights and their norm; its length in bigrams. */
interface TfIdfVector {
  /** [N]: n-gram → tf · idf. */
  readonly weights: Map<string, number>[];
  /** [N]: Euclidean norm of each order's weights. */
  readonly norms: number[];
  /** Number of bigram occurrences (pycocoevalcap's `length`). */
  readonly length: number;
}

/** Document frequency: for each n-gram, the number of images whose references contain it. */
function documentFrequency(references: readonly (readonly NgramCounts[])[][]): Map<string, number> {
  const frequency = new Map<string, number>();
  for (const image of references) {
    const seen = new Set<string>();
    for (const reference of image) for (const counts of reference) for (const key of counts.keys()) seen.add(key);
    for (const key of seen) frequency.set(key, (frequency.get(key) ?? 0) + 1);
  }
  return frequency;
}

function tfIdf(counts: readonly NgramCounts[], frequency: ReadonlyMap<string, number>, logImages: number): TfIdfVector {
  let length = 0;
  const weights = counts.map((orderCounts, k) => {
    const out = new Map<string, number>();
    for (const [key, termFrequency] of orderCounts) {
      out.set(key, termFrequency * (logImages - Math.log(Math.max(1, frequency.get(key) ?? 0))));
      if (k === 1) length += termFrequency;
    }
    return out;
  });
  // Squares summed in the n-grams' order of first occurrence, as pycocoevalcap.
  const norms = weights.map((order) => {
    let sumOfSquares = 0;
    for (const weight of order.values()) sumOfSquares += weight ** 2;
    return Math.sqrt(sumOfSquares);
  });
  return { weights, norms, length };
}

/** [N]: clipped cosine similarity per order, times the Gaussian length penalty. */
function similarity(candidate: TfIdfVector, reference: TfIdfVector, sigma: number): number[] {
  const delta = candidate.length - reference.length;
  // pycocoevalcap writes np.e ** x; Math.E ** x computes the same pow.
  const lengthPenalty = Math.E ** (-(delta ** 2) / (2 * sigma ** 2));
  return candidate.weights.map((order, k) => {
    const referenceOrder = reference.weights[k];
    let dot = 0;
    for (const [key, weight] of order) {
      const referenceWeight = referenceOrder.get(key) ?? 0;
      dot += Math.min(weight, referenceWeight) * referenceWeight;
    }
    if (candidate.norms[k] !== 0 && reference.norms[k] !== 0) dot /= candidate.norms[k] * reference.norms[k];
    return dot * lengthPenalty;
  });
}

/**
 * Each image's CIDEr-D ([images]) for candidate captions (one per image)
 * against the images' reference captions, exactly as pycocoevalcap's `Cider`
 * (its per-image `scores`). Document frequencies come from these references.
 */
export function ciderDPerImage(
  candidates: readonly string[],
  references: readonly (readonly string[])[],
  args: CiderDArgs = {},
): number[] {
  const { maxN, sigma } = resolveArgs(args);
  const corpus = tokenizeCorpus("ciderD", candidates, references);
  const referenceCounts = corpus.references.map((image) => image.map((tokens) => countNgramsUpTo(tokens, maxN)));
  const frequency = documentFrequency(referenceCounts);
  const logImages = Math.log(corpus.candidates.length);
  return corpus.candidates.map((tokens, i) => {
    const candidate = tfIdf(countNgramsUpTo(tokens, maxN), frequency, logImages);
    const perOrder = new Array<number>(maxN).fill(0);
    for (const counts of referenceCounts[i]) {
      const perOrderSimilarity = similarity(candidate, tfIdf(counts, frequency, logImages), sigma);
      for (let k = 0; k < maxN; k++) perOrder[k] += perOrderSimilarity[k];
    }
    let meanOverOrders = 0;
    for (const value of perOrder) meanOverOrders += value;
    meanOverOrders /= maxN;
    return (meanOverOrders / referenceCounts[i].length) * 10;
  });
}

/** Corpus CIDEr-D: the mean of {@link ciderDPerImage}, as pycocoevalcap's `Cider` reports it ("CIDEr"). */
export function ciderD(candidates: readonly string[], references: readonly (readonly string[])[], args: CiderDArgs = {}): number {
  const scores = ciderDPerImage(candidates, references, args);
  let sum = 0;
  for (const score of scores) sum += score;
  return sum / scores.length;
}
