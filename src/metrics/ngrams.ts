/**
 * Tokenisation and n-gram counting shared by the caption and story metrics
 * (BLEU, CIDEr-D, and later ROUGE-L, METEOR-style matching and repetition).
 *
 * Tokenisation follows what the COCO caption evaluation does before scoring:
 * Stanford CoreNLP's PTBTokenizer with `-preserveLines -lowerCase`, then the
 * punctuation tokens dropped.
 * Reference: coco-caption `pycocoevalcap/tokenizer/ptbtokenizer.py`
 * (`PUNCTUATIONS`, `PTBTokenizer.tokenize`); n-gram counting as `precook` in
 * `pycocoevalcap/bleu/bleu_scorer.py` and `pycocoevalcap/cider/cider_scorer.py`.
 *
 * The tokenizer here reimplements the part of PTB tokenisation our world's
 * text uses: lower-case words, digits, spaces and the punctuation
 * . , ; : ! ? ' " ` - ( ) { }. On such text it gives PTBTokenizer's tokens:
 * punctuation is split off words and dropped, "n't" and the clitics 's 're 've
 * 'll 'd 'm are split off and kept ("don't" → "do n't"), hyphenated words
 * ("light-blue") and numbers ("3.5", "1,000") stay one token. Other
 * characters become one-character tokens of their own, kept (an approximation
 * of PTB's rarer rules, e.g. its -LSB- for "[").
 */

/** Tokens coco-caption removes after PTB tokenisation (`PUNCTUATIONS`). */
export const PTB_PUNCTUATION: ReadonlySet<string> = new Set([
  "''",
  "'",
  "``",
  "`",
  "-LRB-",
  "-RRB-",
  "-LCB-",
  "-RCB-",
  ".",
  "?",
  "!",
  ",",
  ":",
  "-",
  "--",
  "...",
  ";",
]);

/** PTB's names for brackets and quotes (PTBTokenizer normalises them this way). */
const PTB_SYMBOL: Readonly<Record<string, string>> = { "(": "-LRB-", ")": "-RRB-", "{": "-LCB-", "}": "-RCB-", '"': "''" };

/** "n't" and the clitics PTB splits off the word before them. */
const CLITIC = /^(?:n't|'(?:s|re|ve|ll|d|m))$/u;
/** Splits "don't" → "do n't", "it's" → "it 's" (PTB's contraction rules). */
const SPLIT_CLITICS = [/(\p{L})(n't)(?![\p{L}\p{N}])/gu, /([\p{L}\p{N}])('(?:s|re|ve|ll|d|m))(?![\p{L}\p{N}])/gu];
/** One token: a number with separators, a word (inner hyphens or apostrophes allowed), "...", "--", or one other character. */
const TOKEN = /\p{N}+(?:[.,]\p{N}+)+|[\p{L}\p{N}]+(?:['-][\p{L}\p{N}]+)*|\.\.\.|--|\S/gu;

/**
 * A caption's tokens as coco-caption scores them: lower case, punctuation
 * removed. `"A red circle, left of the square."` → `["a", "red", "circle",
 * "left", "of", "the", "square"]`.
 */
export function ptbTokenize(text: string): string[] {
  if (typeof text !== "string") throw new Error(`ptbTokenize: expected a string, got ${JSON.stringify(text)}`);
  let spaced = text.toLowerCase();
  for (const rule of SPLIT_CLITICS) spaced = spaced.replace(rule, "$1 $2");
  const tokens: string[] = [];
  for (const chunk of spaced.split(/\s+/u)) {
    if (!chunk) continue;
    if (CLITIC.test(chunk)) {
      tokens.push(chunk);
      continue;
    }
    for (const match of chunk.matchAll(TOKEN)) {
      const token = PTB_SYMBOL[match[0]] ?? match[0];
      if (!PTB_PUNCTUATION.has(token)) tokens.push(token);
    }
  }
  return tokens;
}

/** The key of an n-gram: its tokens joined by one space (tokens never contain spaces). */
export function ngramKey(tokens: readonly string[]): string {
  return tokens.join(" ");
}

/** The n-grams of a token sequence in order, as keys: n = 2 over [a, b, c] → ["a b", "b c"]. Empty when n > tokens. */
export function ngrams(tokens: readonly string[], n: number): string[] {
  checkOrder("ngrams", n);
  const out: string[] = [];
  for (let i = 0; i + n <= tokens.length; i++) out.push(ngramKey(tokens.slice(i, i + n)));
  return out;
}

/** How often each n-gram of one order occurs, in order of first occurrence. */
export type NgramCounts = Map<string, number>;

/** Counts of the n-grams of order n. */
export function countNgrams(tokens: readonly string[], n: number): NgramCounts {
  const counts: NgramCounts = new Map();
  for (const key of ngrams(tokens, n)) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/**
 * Counts for every order 1..maxN: element n−1 holds the n-grams of order n.
 * Within an order, entries are in order of first occurrence, as `precook`
 * builds them, so sums over them add in pycocoevalcap's order.
 */
export function countNgramsUpTo(tokens: readonly string[], maxN: number): NgramCounts[] {
  checkOrder("countNgramsUpTo", maxN);
  return Array.from({ length: maxN }, (_, k) => countNgrams(tokens, k + 1));
}

/** For each n-gram, its largest count in any one reference (BLEU's `maxcounts`). */
export function maxCounts(references: readonly NgramCounts[]): NgramCounts {
  const out: NgramCounts = new Map();
  for (const counts of references) for (const [key, count] of counts) out.set(key, Math.max(out.get(key) ?? 0, count));
  return out;
}

/** Σ over the candidate's n-grams of min(candidate count, reference count): BLEU's clipped matches. */
export function clippedMatches(candidate: NgramCounts, reference: NgramCounts): number {
  let matches = 0;
  for (const [key, count] of candidate) matches += Math.min(count, reference.get(key) ?? 0);
  return matches;
}

function checkOrder(where: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${where}: the n-gram order must be an integer ≥ 1, got ${n}`);
}

/**
 * Checks a corpus at the boundary of a caption metric: one candidate per
 * image, at least one reference per image, every reference with a token.
 * Returns the tokenised candidates and references.
 */
export function tokenizeCorpus(
  metric: string,
  candidates: readonly string[],
  references: readonly (readonly string[])[],
): { candidates: string[][]; references: string[][][] } {
  if (!Array.isArray(candidates))
    throw new Error(`${metric}: candidates must be an array of strings, got ${JSON.stringify(candidates)}`);
  if (!Array.isArray(references))
    throw new Error(`${metric}: references must be an array of string arrays, got ${JSON.stringify(references)}`);
  if (candidates.length !== references.length) {
    throw new Error(
      `${metric}: expected one list of references per candidate, got ${candidates.length} candidates and ${references.length} reference lists`,
    );
  }
  if (candidates.length === 0) throw new Error(`${metric}: no candidates to score (empty corpus)`);
  const tokenizedCandidates = candidates.map((candidate, i) => {
    if (typeof candidate !== "string")
      throw new Error(`${metric}: candidate ${i} must be a string, got ${JSON.stringify(candidate)}`);
    return ptbTokenize(candidate);
  });
  const tokenizedReferences = references.map((refs, i) => {
    if (!Array.isArray(refs) || refs.length === 0) {
      throw new Error(`${metric}: image ${i} needs at least one reference caption, got ${JSON.stringify(refs)}`);
    }
    return refs.map((ref, j) => {
      if (typeof ref !== "string")
        throw new Error(`${metric}: reference ${j} of image ${i} must be a string, got ${JSON.stringify(ref)}`);
      const tokens = ptbTokenize(ref);
      if (tokens.length === 0) throw new Error(`${metric}: reference ${j} of image ${i} has no words: ${JSON.stringify(ref)}`);
      return tokens;
    });
  });
  return { candidates: tokenizedCandidates, references: tokenizedReferences };
}
