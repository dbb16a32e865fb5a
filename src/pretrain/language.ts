/**
 * The language backbone: a tiny Llama-architecture causal LM pretrained on
 * all the world's text (captions, stories, questions and answers,
 * instructions; no images), as the LLMs that BLIP-2 and LLaVA start from are
 * (Touvron et al., 2023, "LLaMA"; training after nanoGPT's `train.py`:
 * AdamW, warm-up + cosine decay, packed sequences of documents).
 *
 * Documents are `<|bos|> text <|eos|>`, concatenated and cut into windows of
 * T + 1 tokens (input: the first T, target: the last T).
 *
 * Evaluation also asks the test scenes' questions after the scene's first
 * caption in one document, and alone: whether the model answers from the
 * context before a question, which is what BLIP-2's soft prompt needs of a
 * frozen LLM (the soft prompt stands where the caption would be).
 * Evaluation: perplexity exp(mean next-token cross-entropy) over the test
 * split packed the same way.
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { LlamaForCausalLM, type LlamaConfig } from "../models/llama";
import { AdamW } from "../train/adamw";
import { crossEntropy } from "../train/loss";
import { openSplit, recordBatches } from "../data/loaders";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer";
import { vqaScores, QUESTION_TYPES, type VqaPair } from "../data/vqa";
import { vqaPrompt } from "../pipelines/blip2";
import { runTraining, machineRecord, writeCheckpoint, type CheckpointCard } from "./common";
import { llamaConfigToHF } from "../models/llama_spec";
import type { PretrainArgs } from "./vision";

/** Training and evaluation context length. */
export const LANGUAGE_CONTEXT = 64;

/** The backbone's shape (≈ 0.9M parameters with the world tokenizer). */
export function languageBackboneConfig(tokenizer: TextTokenizer, seed = 0): LlamaConfig {
  return {
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 128,
    intermediateSize: 384,
    numLayers: 4,
    numHeads: 4,
    numKeyValueHeads: 2,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 256,
    eosTokenIds: [tokenizer.eosTokenId],
    padTokenId: tokenizer.padTokenId,
    seed,
  };
}

/** A split's documents packed into windows of `context + 1` token ids. */
export function packedWindows(tokenizer: TextTokenizer, texts: readonly string[], context = LANGUAGE_CONTEXT): number[][] {
  const stream: number[] = [];
  for (const text of texts) stream.push(...tokenizer.encode(text, { addBos: true, addEos: true }));
  const windows: number[][] = [];
  for (let start = 0; start + context + 1 <= stream.length; start += context)
    windows.push(stream.slice(start, start + context + 1));
  return windows;
}

/** Inputs [B, T] and targets [B, T] of windows. */
function windowTensors(windows: readonly number[][]): { inputs: tf.Tensor2D; targets: tf.Tensor2D } {
  const inputs = tf.tensor2d(
    windows.map((w) => w.slice(0, -1)),
    undefined,
    "int32",
  );
  const targets = tf.tensor2d(
    windows.map((w) => w.slice(1)),
    undefined,
    "int32",
  );
  return { inputs, targets };
}

export async function pretrainLanguage(args: PretrainArgs): Promise<{ model: LlamaForCausalLM; card: CheckpointCard }> {
  const log = args.log ?? console.log;
  const steps = args.steps ?? 1500;
  const batchSize = args.batchSize ?? 32;
  const seed = args.seed ?? 0;
  const tokenizerDir = path.join(args.world, "tokenizer");
  const tokenizer = loadTokenizer(tokenizerDir);
  const train = openSplit(args.world, "text", "train");
  const windows = packedWindows(
    tokenizer,
    train.records.map((r) => r.text),
  );
  const model = new LlamaForCausalLM(languageBackboneConfig(tokenizer, seed));
  const optimizer = new AdamW({ learningRate: 3e-3, weightDecay: 0.1, beta2: 0.99 });
  let epoch = 0;
  let order = [...recordBatches(windows, batchSize, { seed, epoch, dropLast: true })];
  const run = await runTraining(
    "language",
    steps,
    optimizer,
    3e-3,
    () => {
      if (order.length === 0) order = [...recordBatches(windows, batchSize, { seed, epoch: ++epoch, dropLast: true })];
      const { inputs, targets } = windowTensors(order.shift()!);
      const loss = optimizer.minimize(() => crossEntropy(model.apply(inputs), targets), model.trainableParameters());
      tf.dispose([inputs, targets]);
      return loss;
    },
    log,
  );
  optimizer.dispose();
  const metrics = await evaluateLanguage(model, tokenizer, args.world);
  const card: CheckpointCard = {
    name: "language",
    title: "mllm-labs language backbone: tiny Llama on the world's text",
    description: `A Llama-architecture causal LM (4 layers, width 128, 4 query / 2 key-value heads, SwiGLU, RoPE, tied embeddings) pretrained on the world's text with context ${LANGUAGE_CONTEXT}. The labs freeze it as the LLM of BLIP-2, LLaVA and VideoLLaMA.`,
    model_type: "llama",
    parameters: model.parameterCount(),
    steps,
    batch_size: batchSize,
    train_seconds: Math.round(run.seconds),
    ...machineRecord(),
    seed,
    data: `data/world/text train split, ${windows.length} packed windows of ${LANGUAGE_CONTEXT + 1} tokens`,
    loss_curve: run.curve,
    loss_every: run.every,
    metrics,
    metric_notes: LANGUAGE_METRIC_NOTES,
    command: "npm run pretrain -- language",
  };
  if (!args.dryRun) await writeCheckpoint(args.out, model, llamaConfigToHF(model.config), card, tokenizerDir);
  return { model, card };
}

export const LANGUAGE_METRIC_NOTES: Record<string, string> = {
  test_perplexity: `exp of the mean next-token cross-entropy on the test split's text packed in windows of ${LANGUAGE_CONTEXT}; a uniform guess scores the vocabulary size`,
  test_tokens: "tokens scored",
  grounded_vqa_accuracy:
    "VQA soft accuracy on the test scenes' questions asked after the scene's first caption in one document ('{caption} question: {q} answer:', first word of the greedy answer): answering from context",
  question_only_vqa_accuracy:
    "the same questions with no caption before them (the question's prior alone: the blind baseline of the grounded rows)",
};
for (const type of QUESTION_TYPES) {
  LANGUAGE_METRIC_NOTES[`grounded_vqa_${type}_accuracy`] = `grounded VQA, ${type} questions`;
  LANGUAGE_METRIC_NOTES[`question_only_vqa_${type}_accuracy`] = `question only, ${type} questions`;
}

/** Greedy first words of the answers to `prompts` (left-padded batches of 128, 3 new tokens). */
async function firstWords(model: LlamaForCausalLM, tokenizer: TextTokenizer, prompts: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (let start = 0; start < prompts.length; start += 128) {
    const { inputIds, attentionMask } = tokenizer.encodeBatch(prompts.slice(start, start + 128), {
      addBos: true,
      padSide: "left",
    });
    const ids = tf.tensor2d(inputIds, undefined, "int32");
    const mask = tf.tensor2d(attentionMask, undefined, "int32");
    try {
      const rows = await model.generate(ids, { attentionMask: mask, maxNewTokens: 3 });
      const T = inputIds[0].length; // rows hold the prompt, then the new tokens
      for (const row of rows) out.push(tokenizer.decode(row.slice(T), { skipSpecialTokens: true }).trim().split(/\s+/)[0] ?? "");
    } finally {
      tf.dispose([ids, mask]);
    }
  }
  return out;
}

/** Test perplexity, and VQA from a caption in context against the question alone. */
export async function evaluateLanguage(
  model: LlamaForCausalLM,
  tokenizer: TextTokenizer,
  world: string,
): Promise<Record<string, number>> {
  const test = openSplit(world, "text", "test");
  const windows = packedWindows(
    tokenizer,
    test.records.map((r) => r.text),
  );
  let total = 0;
  let tokens = 0;
  for (const batch of recordBatches(windows, 64)) {
    const { inputs, targets } = windowTensors(batch);
    const loss = tf.tidy(() => crossEntropy(model.apply(inputs), targets));
    const n = targets.size;
    total += (await loss.data())[0] * n;
    tokens += n;
    tf.dispose([loss, inputs, targets]);
  }
  const scenes = openSplit(world, "scenes", "test").records as { captions: string[]; vqa: VqaPair[] }[];
  const questions = scenes.flatMap((scene) => scene.vqa);
  const grounded = scenes.flatMap((scene) => scene.vqa.map((q) => `${scene.captions[0]} ${vqaPrompt(q.question)}`));
  const alone = questions.map((q) => vqaPrompt(q.question));
  return {
    test_perplexity: Math.exp(total / tokens),
    test_tokens: tokens,
    ...vqaScores("grounded_", await firstWords(model, tokenizer, grounded), questions),
    ...vqaScores("question_only_", await firstWords(model, tokenizer, alone), questions),
  };
}
