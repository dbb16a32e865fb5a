/**
 * ROUGE-L: the longest common subsequence (LCS) of candidate and reference
 * tokens as an F-measure, β = 1.2, taking the best precision and the best
 * recall over an item's references, averaged over items — exactly as the
 * COCO caption evaluation computes it.
 *
 * Paper: Lin, "ROUGE: A Package for Automatic Evaluation of Summaries" (2004).
 * Reference: coco-caption `pycocoevalcap/rouge/rouge.py` (`my_lcs`, `Rouge.calc_score`, beta = 1.2).
 *
 * Why ROUGE-L rather than a METEOR-style unigram F-mean: METEOR's value comes
 * from stemming and WordNet synonyms, which a world of 30 color-shape words
 * does not need, and its reference implementation (a Java jar) cannot be
 * reproduced exactly here; ROUGE-L is exact, and its LCS rewards sentences
 * told in the reference's order, which a story metric wants.
 */
import { tokenizeCorpus } from "./ngrams";

/** β of pycocoevalcap's `Rouge` (recall weighted 1.44 times precision). */
export const ROUGE_L_BETA = 1.2;

/** Length of the longest common subsequence of two token lists (dynamic programming, O(|a|·|b|)). */
export function longestCommonSubsequence(a: readonly string[], b: readonly string[]): number {
  let previous = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const current = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++)
      current[j] = a[i - 1] === b[j - 1] ? previous[j - 1] + 1 : Math.max(previous[j], current[j - 1]);
    previous = current;
  }
  return previous[b.length];
}

/** One item's ROUGE-L from tokens: F_β of max-over-references LCS precision and recall (0 when either is 0). */
export function rougeLTokens(candidate: readonly string[], references: readonly (readonly string[])[]): number {
  let precision = 0;
  let recall = 0;
  for (const reference of references) {
    const lcs = longestCommonSubsequence(reference, candidate);
    precision = Math.max(precision, candidate.length ? lcs / candidate.length : 0);
    recall = Math.max(recall, lcs / reference.length);
  }
  if (precision === 0 || recall === 0) return 0;
  const beta2 = ROUGE_L_BETA ** 2;
  return ((1 + beta2) * precision * recall) / (recall + beta2 * precision);
}

/** Per-item ROUGE-L of candidates (one per item) against each item's references (PTB-tokenised as the COCO evaluation). */
export function rougeLPerItem(candidates: readonly string[], references: readonly (readonly string[])[]): number[] {
  const corpus = tokenizeCorpus("rougeL", candidates, references);
  return corpus.candidates.map((candidate, i) => rougeLTokens(candidate, corpus.references[i]));
}

/** Corpus ROUGE-L: the mean of {@link rougeLPerItem} (pycocoevalcap's "ROUGE_L"). */
export function rougeL(candidates: readonly string[], references: readonly (readonly string[])[]): number {
  const scores = rougeLPerItem(candidates, references);
  return scores.reduce((sum, score) => sum + score, 0) / scores.length;
}
