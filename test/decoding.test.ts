/**
 * Decoding a storyteller needs (lab 05): the repetition penalty and n-gram ban
 * on fixed logits, beam search on scripted logits against hand-computed and
 * exhaustive answers, and the options through a tiny Llama's `generate`
 * (cache or not, ids or embeddings, no tensor leaks).
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { LlamaForCausalLM, type LlamaConfig } from "../src/models/llama";
import { applyRepetitionPenalty, bannedNgramTokens, processLogits } from "../src/models/logits_processors";
import { beamSearch, type BeamStep } from "../src/models/beam_search";
import { argmax } from "../src/models/sampling";
import { Random } from "../src/util/random";

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

describe("logits processors", () => {
  it("repetition penalty divides positive and multiplies negative scores of seen tokens, once each", () => {
    const scores = new Float32Array([2, -1, 0.5, 3]);
    applyRepetitionPenalty(scores, [0, 1, 1], 2);
    expect(Array.from(scores)).toEqual([1, -2, 0.5, 3]);
  });

  it("no-repeat n-gram bans the tokens that followed the last n − 1 tokens before", () => {
    expect(bannedNgramTokens([1, 2, 3, 1, 2], 3)).toEqual([3]);
    expect(bannedNgramTokens([1, 2, 1, 4, 1], 2).sort()).toEqual([2, 4]);
    expect(bannedNgramTokens([5, 6, 5], 1).sort()).toEqual([5, 6]); // unigrams: every seen token
    expect(bannedNgramTokens([1], 3)).toEqual([]); // too short to complete a trigram
    const scores = new Float32Array([1, 1, 1, 1, 1]);
    processLogits(scores, [1, 2, 3, 1, 2], { repetitionPenalty: 2, noRepeatNgramSize: 3 });
    expect(Array.from(scores)).toEqual([1, 0.5, 0.5, -Infinity, 1]);
  });
});

/** A scripted "model": next-token log-probabilities as a function of the tokens so far (V = probabilities.length). */
function scriptedStep(batch: number, beams: number, distribution: (prefix: readonly number[]) => number[]): BeamStep {
  let prefixes: number[][] = Array.from({ length: batch * beams }, () => []);
  return (origins, tokens) => {
    if (origins && tokens) prefixes = origins.map((row, i) => [...prefixes[row], tokens[i]]);
    return Promise.resolve(Float32Array.from(prefixes.flatMap((prefix) => distribution(prefix).map(Math.log))));
  };
}

/** Tokens a = 0, b = 1, end = 2. Greedy takes a (0.5) then ends (0.4): 0.2; b then end is 0.4 · 0.9 = 0.36. */
function garden(prefix: readonly number[]): number[] {
  const key = prefix.join(",");
  if (key === "") return [0.5, 0.4, 0.1];
  if (key === "0") return [0.3, 0.3, 0.4];
  if (key === "1") return [0.05, 0.05, 0.9];
  return [0.2, 0.2, 0.6];
}

/** The best sequence by Σ log p / length^lp over every sequence that ends with `end` or has `maxNew` tokens. */
function exhaustive(distribution: (prefix: readonly number[]) => number[], V: number, end: number, maxNew: number, lp: number) {
  let best = { tokens: [] as number[], score: -Infinity };
  const visit = (prefix: number[], sum: number) => {
    const probabilities = distribution(prefix);
    for (let token = 0; token < V; token++) {
      const tokens = [...prefix, token];
      const total = sum + Math.log(probabilities[token]);
      if (token === end || tokens.length === maxNew) {
        const score = total / tokens.length ** lp;
        if (score > best.score) best = { tokens, score };
      } else visit(tokens, total);
    }
  };
  visit([], 0);
  return best;
}

describe("beam search", () => {
  it("finds the path greedy misses, scored Σ log p / length", async () => {
    const greedy: number[] = [];
    while (greedy.length < 3 && greedy[greedy.length - 1] !== 2) greedy.push(argmax(garden(greedy)));
    expect(greedy).toEqual([0, 2]);
    const result = await beamSearch(scriptedStep(1, 2, garden), [[]], 3, { numBeams: 2, maxNewTokens: 3, stopTokens: [2] });
    expect(result.tokens).toEqual([[1, 2]]);
    expect(result.scores[0]).toBeCloseTo(Math.log(0.36) / 2, 6);
  });

  it("length penalty 0 keeps the raw sum; a large one prefers the longer story", async () => {
    // end at once: 0.1 (log −2.30, length 1); b, end: 0.36 (log −1.02, length 2).
    const run = (lengthPenalty: number) =>
      beamSearch(scriptedStep(1, 2, garden), [[]], 3, {
        numBeams: 2,
        maxNewTokens: 3,
        stopTokens: [2],
        lengthPenalty,
        earlyStopping: "never",
      });
    expect((await run(0)).tokens[0]).toEqual([1, 2]);
    expect((await run(0)).scores[0]).toBeCloseTo(Math.log(0.36), 6);
    // lp = 4: three tokens a, a, end (0.5·0.3·0.6 = 0.09) score log(0.09)/81 = −0.0297 beats log(0.36)/16 = −0.0639.
    const long = await run(4);
    expect(long.tokens[0]).toHaveLength(3);
    expect(long.scores[0]).toBeGreaterThan(Math.log(0.36) / 16);
  });

  it("with enough beams equals an exhaustive search, for several length penalties and batch rows", async () => {
    const V = 3;
    const end = 2;
    const maxNew = 4;
    const tables = [11, 12].map((seed) => {
      const cache = new Map<string, number[]>();
      return (prefix: readonly number[]) => {
        const key = prefix.join(",");
        if (!cache.has(key)) {
          const random = new Random(seed * 1000 + prefix.reduce((hash, token) => hash * 7 + token + 1, 0));
          const weights = Array.from({ length: V }, () => random.next() + 0.05);
          const total = weights.reduce((sum, w) => sum + w, 0);
          cache.set(
            key,
            weights.map((w) => w / total),
          );
        }
        return cache.get(key)!;
      };
    });
    // Row b of the batch is scripted by table b.
    const batched = (beams: number): BeamStep => {
      const steps = tables.map((table) => scriptedStep(1, beams, table));
      return async (origins, tokens) => {
        const parts: Float32Array[] = [];
        for (let b = 0; b < tables.length; b++) {
          const own = origins?.slice(b * beams, (b + 1) * beams).map((row) => row - b * beams);
          parts.push(await steps[b](own, tokens?.slice(b * beams, (b + 1) * beams)));
        }
        return Float32Array.from(parts.flatMap((part) => Array.from(part)));
      };
    };
    for (const lengthPenalty of [-1, 0, 1, 2]) {
      const K = 24; // ≥ every real continuation (2 open prefixes per token · 3 tokens at step 4: 8 · 3)
      const result = await beamSearch(batched(K), [[], []], V, {
        numBeams: K,
        maxNewTokens: maxNew,
        stopTokens: [end],
        lengthPenalty,
        earlyStopping: "never",
      });
      tables.forEach((table, b) => {
        const best = exhaustive(table, V, end, maxNew, lengthPenalty);
        expect(result.tokens[b], `lp ${lengthPenalty}, row ${b}`).toEqual(best.tokens);
        expect(result.scores[b]).toBeCloseTo(best.score, 5);
      });
    }
  });

  it("earlyStopping true stops once numBeams hypotheses are finished", async () => {
    let calls = 0;
    const counting: BeamStep = (origins, tokens) => {
      calls++;
      return scriptedStep(1, 2, () => [0.1, 0.1, 0.8])(origins, tokens); // the end token is always likeliest
    };
    const result = await beamSearch(counting, [[]], 3, { numBeams: 2, maxNewTokens: 10, stopTokens: [2], earlyStopping: true });
    // Step 1: end (rank 0) finishes one hypothesis; step 2: the two open beams' ends finish the second.
    expect(calls).toBe(2);
    expect(result.tokens[0]).toEqual([2]);
  });

  it("rejects bad options, quoting them", async () => {
    const step = scriptedStep(1, 2, garden);
    await expect(
      beamSearch(step, [[]], 3, { numBeams: 2, maxNewTokens: 3, earlyStopping: "sometimes" as never }),
    ).rejects.toThrow(/earlyStopping must be true, false or "never", got "sometimes"/);
    await expect(beamSearch(step, [[]], 4, { numBeams: 2, maxNewTokens: 3 })).rejects.toThrow(
      /returned 6 scores, expected 2 rows × 4 tokens = 8/,
    );
  });
});

const TINY: LlamaConfig = {
  vocabSize: 16,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 4,
  numKeyValueHeads: 2,
  seed: 5,
};

describe("generate with the storyteller's options", () => {
  it("repetition penalty and n-gram ban match a reference loop over full forwards", async () => {
    const model = new LlamaForCausalLM(TINY);
    const prompt = [1, 2, 3, 2];
    const ids = tf.tensor2d([prompt], [1, 4], "int32");
    const before = tf.memory().numTensors;
    const options = { repetitionPenalty: 1.8, noRepeatNgramSize: 2, maxNewTokens: 12, stopTokens: [] };
    const generated = await model.generate(ids, options);
    // Reference: the whole sequence through forward each step, the processors, argmax.
    const sequence = [...prompt];
    for (let step = 0; step < 12; step++) {
      const logits = tf.tidy(() => {
        const all = model.forward({ inputIds: tf.tensor2d([sequence], [1, sequence.length], "int32") }).logits;
        return all.slice([0, sequence.length - 1, 0], [1, 1, 16]).reshape([16]);
      });
      const scores = (await logits.data()) as Float32Array;
      logits.dispose();
      processLogits(scores, sequence, options);
      sequence.push(argmax(scores));
    }
    expect(generated[0]).toEqual(sequence);
    const bigrams = sequence.slice(1).map((token, i) => `${sequence[i]},${token}`);
    expect(new Set(bigrams).size).toBe(bigrams.length); // the ban held over prompt and story
    const plain = await model.generate(ids, { maxNewTokens: 12, stopTokens: [] });
    expect(plain[0]).not.toEqual(sequence); // the options changed something
    expect(tf.memory().numTensors).toBe(before);
    ids.dispose();
    model.dispose();
  });

  it("beam search: the cache gives the tokens of full recomputation, for ids, embeddings and left padding", async () => {
    const model = new LlamaForCausalLM(TINY);
    const ids = tf.tensor2d(
      [
        [0, 4, 5, 6],
        [7, 8, 9, 10],
      ],
      [2, 4],
      "int32",
    );
    const attentionMask = tf.tensor2d(
      [
        [0, 1, 1, 1],
        [1, 1, 1, 1],
      ],
      [2, 4],
      "int32",
    );
    const before = tf.memory().numTensors;
    const options = { numBeams: 3, maxNewTokens: 6, stopTokens: [11], lengthPenalty: 1.2, repetitionPenalty: 1.3, attentionMask };
    const cached = await model.generate(ids, options);
    const uncached = await model.generate(ids, { ...options, useCache: false });
    expect(cached).toEqual(uncached);
    expect(cached[0].slice(0, 4)).toEqual([0, 4, 5, 6]);
    const embeds = model.model.embedTokens.apply(ids);
    const promptIds = [
      [0, 4, 5, 6],
      [7, 8, 9, 10],
    ];
    const fromEmbeds = await model.generate(undefined, { ...options, inputsEmbeds: embeds, promptIds });
    expect(fromEmbeds).toEqual(cached.map((row) => row.slice(4)));
    expect(await model.generate(undefined, { ...options, inputsEmbeds: embeds, promptIds, useCache: false })).toEqual(fromEmbeds);
    embeds.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(model.generate(ids, { numBeams: 2, temperature: 0.7 })).rejects.toThrow(
      /beam search samples nothing.*temperature 0.7/,
    );
    await expect(model.generate(ids, { numBeams: 1.5 })).rejects.toThrow(/numBeams must be a positive integer.*1.5/);
    await expect(model.generate(ids, { repetitionPenalty: 0 })).rejects.toThrow(
      /repetitionPenalty must be a finite number > 0.*got 0/,
    );
    tf.dispose([ids, attentionMask]);
    model.dispose();
  });
});
