/**
 * Byte-level BPE training (Sennrich et al., 2016; GPT-2's byte-level variant,
 * Radford et al., 2019), written out as a Hugging Face `tokenizer.json` that
 * the `tokenizers` library (Rust or JS) loads as it is.
 *
 * Reference: huggingface/tokenizers `BpeTrainer` (count words after the
 * pre-tokenizer, then repeatedly merge the most frequent adjacent pair, ties
 * broken by the pair itself so the result is deterministic).
 */

/** GPT-2's pre-tokenizer pattern (what `ByteLevel` with `use_regex: true` splits on). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's `bytes_to_unicode`: every byte as a printable character. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return table;
}

export interface TrainBpeArgs {
  /** Total vocabulary including special tokens; training stops early when no pair occurs `minFrequency` times. Default 1024. */
  readonly vocabSize?: number;
  /** Added at ids 0, 1, … in this order. Default none. */
  readonly specialTokens?: readonly string[];
  /** A pair must occur at least this often to be merged. Default 2. */
  readonly minFrequency?: number;
}

/** A Hugging Face tokenizer.json document (the fields this trainer writes). */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: {
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }[];
  normalizer: null;
  pre_tokenizer: Record<string, unknown>;
  post_processor: Record<string, unknown>;
  decoder: Record<string, unknown>;
  model: {
    type: "BPE";
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

/** Trains byte-level BPE on `texts`. */
export function trainByteLevelBpe(texts: Iterable<string>, args: TrainBpeArgs = {}): TokenizerJson {
  const vocabSize = args.vocabSize ?? 1024;
  const special = args.specialTokens ?? [];
  const minFrequency = args.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + special.length)
    throw new Error(`trainByteLevelBpe: vocabSize must be an integer ≥ 256 + ${special.length} special tokens, got ${vocabSize}`);
  const byteChars = bytesToUnicode();
  const encoder = new TextEncoder();
  // Word frequencies after pre-tokenization, each word as its byte characters.
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const match of text.matchAll(GPT2_PATTERN)) wordCounts.set(match[0], (wordCounts.get(match[0]) ?? 0) + 1);
  }
  const words: { symbols: string[]; count: number }[] = [...wordCounts.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([word, count]) => ({ symbols: [...encoder.encode(word)].map((b) => byteChars[b]), count }));
  const vocab: Record<string, number> = {};
  special.forEach((token, id) => (vocab[token] = id));
  // All 256 byte symbols, in byte order, after the special tokens.
  for (let b = 0; b < 256; b++) vocab[byteChars[b]] = special.length + b;
  const merges: [string, string][] = [];
  const key = (a: string, b: string) => `${a}\u0000${b}`;
  while (Object.keys(vocab).length < vocabSize) {
    const pairCounts = new Map<string, number>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.symbols.length; i++) {
        const k = key(word.symbols[i], word.symbols[i + 1]);
        pairCounts.set(k, (pairCounts.get(k) ?? 0) + word.count);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [k, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== undefined && k < best)) {
        best = k;
        bestCount = count;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [left, right] = best.split("\u0000");
    const merged = left + right;
    merges.push([left, right]);
    if (!(merged in vocab)) vocab[merged] = Object.keys(vocab).length;
    for (const word of words) {
      const s = word.symbols;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === left && s[i + 1] === right) s.splice(i, 2, merged);
      }
    }
  }
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
