/**
 * BLEU as the COCO caption evaluation computes it (corpus-level, several
 * references per image).
 *
 * Paper: Papineni et al., "BLEU: a Method for Automatic Evaluation of Machine
 * Translation" (ACL 2002).
 * Reference: coco-caption / pycocoevalcap `pycocoevalcap/bleu/bleu.py` and
 * `bleu_scorer.py` (`BleuScorer.compute_score(option="closest")`).
 *
 * For n = 1..N, over the whole corpus:
 *   p_n  = (Σ clipped n-gram matches + 1e-15) / (Σ candidate n-grams + 1e-9)
 *          (clipped: an n-gram counts at most as often as in the one reference
 *          where it occurs most; the tiny/small terms keep 0/0 finite)
 *   BLEU-n = (p_1 · … · p_n)^(1/n) · BP
 *   BP   = exp(1 − r/c) when c < r, else 1, with c the total candidate length
 *          and r the sum over images of the reference length closest to the
 *          candidate's (the shorter one on a tie), both with the same epsilons.
 * Captions are tokenised as coco-caption's PTBTokenizer does (see ngrams.ts).
 */
import { clippedMatches, countNgramsUpTo, maxCounts, tokenizeCorpus } from "./ngrams";

/** pycocoevalcap's `tiny`: added to the matches so that 0 matches give a tiny, not zero, precision. */
const TINY = 1e-15;
/** pycocoevalcap's `small`: added to the n-gram totals so that 0 n-grams do not divide by zero. */
const SMALL = 1e-9;

/** What one candidate contributes (pycocoevalcap's cooked test `comps`). */
interface BleuCounts {
  /** Candidate length in tokens. */
  readonly candidateLength: number;
  /** The reference length closest to the candidate's, the shorter on a tie. */
  readonly referenceLength: number;
  /** [N]: number of candidate n-grams of each order, max(0, length − n + 1). */
  readonly guessed: number[];
  /** [N]: clipped matches of each order. */
  readonly correct: number[];
}

function countCandidate(candidate: readonly string[], references: readonly (readonly string[])[], maxN: number): BleuCounts {
  const candidateLength = candidate.length;
  // min over (|ref − cand|, ref) as Python compares tuples: closest, then shortest.
  let referenceLength = references[0].length;
  for (const reference of references) {
    const distance = Math.abs(reference.length - candidateLength);
    const best = Math.abs(referenceLength - candidateLength);
    if (distance < best || (distance === best && reference.length < referenceLength)) referenceLength = reference.length;
  }
  const candidateCounts = countNgramsUpTo(candidate, maxN);
  const referenceCounts = references.map((reference) => countNgramsUpTo(reference, maxN));
  const guessed: number[] = [];
  const correct: number[] = [];
  for (let k = 0; k < maxN; k++) {
    guessed.push(Math.max(0, candidateLength - k));
    correct.push(clippedMatches(candidateCounts[k], maxCounts(referenceCounts.map((counts) => counts[k]))));
  }
  return { candidateLength, referenceLength, guessed, correct };
}

/** BLEU-1..N from summed counts: cumulative geometric means of the precisions times the brevity penalty. */
function scoresFromCounts(
  candidateLength: number,
  referenceLength: number,
  guessed: readonly number[],
  correct: readonly number[],
): number[] {
  const scores: number[] = [];
  let product = 1;
  for (let k = 0; k < guessed.length; k++) {
    product *= (correct[k] + TINY) / (guessed[k] + SMALL);
    scores.push(product ** (1 / (k + 1)));
  }
  const ratio = (candidateLength + TINY) / (referenceLength + SMALL);
  if (ratio < 1) {
    const brevityPenalty = Math.exp(1 - 1 / ratio);
    for (let k = 0; k < scores.length; k++) scores[k] *= brevityPenalty;
  }
  return scores;
}

function checkMaxN(maxN: number): void {
  if (!Number.isInteger(maxN) || maxN < 1) throw new Error(`bleu: maxN must be an integer ≥ 1, got ${maxN}`);
}

/** Corpus BLEU and each image's BLEU, as pycocoevalcap's `Bleu(N).compute_score` returns them. */
export interface BleuResult {
  /** [N]: corpus BLEU-1..BLEU-N. */
  readonly corpus: number[];
  /** [images][N]: each image's BLEU-1..N with its own brevity penalty. */
  readonly perImage: number[][];
}

/**
 * Corpus BLEU-1..maxN and per-image BLEU of candidate captions (one per image)
 * against each image's reference captions, exactly as pycocoevalcap.
 */
export function bleuScores(candidates: readonly string[], references: readonly (readonly string[])[], maxN = 4): BleuResult {
  checkMaxN(maxN);
  const corpus = tokenizeCorpus("bleu", candidates, references);
  const counts = corpus.candidates.map((candidate, i) => countCandidate(candidate, corpus.references[i], maxN));
  let candidateLength = 0;
  let referenceLength = 0;
  const guessed = new Array<number>(maxN).fill(0);
  const correct = new Array<number>(maxN).fill(0);
  for (const c of counts) {
    candidateLength += c.candidateLength;
    referenceLength += c.referenceLength;
    for (let k = 0; k < maxN; k++) {
      guessed[k] += c.guessed[k];
      correct[k] += c.correct[k];
    }
  }
  return {
    corpus: scoresFromCounts(candidateLength, referenceLength, guessed, correct),
    perImage: counts.map((c) => scoresFromCounts(c.candidateLength, c.referenceLength, c.guessed, c.correct)),
  };
}

/** Corpus BLEU-1..maxN (element n−1 is BLEU-n), as pycocoevalcap's `Bleu(maxN)`. */
export function bleu(candidates: readonly string[], references: readonly (readonly string[])[], maxN = 4): number[] {
  return bleuScores(candidates, references, maxN).corpus;
}

/** Corpus BLEU-4, as pycocoevalcap's `Bleu(4)` reports it ("Bleu_4"). */
export function bleu4(candidates: readonly string[], references: readonly (readonly string[])[]): number {
  return bleu(candidates, references, 4)[3];
}
