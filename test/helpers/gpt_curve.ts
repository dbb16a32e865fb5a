/** A 20-step GPT training run on counting sequences, for comparing backends' loss curves. */
import * as tf from "@tensorflow/tfjs";
import { expect } from "vitest";
import { AdamW, crossEntropy, GPT, Random } from "../../src/index";

/** Trains a tiny GPT for `steps` steps on `backend`; asserts no tensor leaks per step; returns the losses. */
export async function gptLossCurve(backend: string, optimizerKind: "tfjs-adam" | "adamw", steps = 20): Promise<number[]> {
  await tf.setBackend(backend);
  const model = new GPT({ vocabSize: 13, contextLength: 8, dim: 16, layers: 2, heads: 2, seed: 4 });
  const adam = optimizerKind === "tfjs-adam" ? tf.train.adam(3e-3) : undefined;
  const adamw = optimizerKind === "adamw" ? new AdamW({ learningRate: 3e-3 }) : undefined;
  const data = new Random(9);
  const losses: number[] = [];
  let tensorsAfterFirst = 0;
  for (let step = 0; step < steps; step++) {
    // Counting sequences (next = previous + 1 mod 13): learnable in a few steps.
    const rows = Array.from({ length: 8 }, () => {
      const start = data.int(0, 13);
      return Array.from({ length: 8 }, (_, i) => (start + i) % 13);
    });
    const ids = tf.tensor2d(
      rows.map((r) => r.slice(0, 7)),
      undefined,
      "int32",
    );
    const targets = tf.tensor2d(
      rows.map((r) => r.slice(1)),
      undefined,
      "int32",
    );
    const lossFn = () => crossEntropy(model.apply(ids), targets);
    const loss = adam
      ? adam.minimize(lossFn, true, model.trainableParameters())!
      : adamw!.minimize(lossFn, model.trainableParameters());
    losses.push((await loss.data())[0]);
    tf.dispose([ids, targets, loss]);
    if (step === 0) tensorsAfterFirst = tf.memory().numTensors;
  }
  expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
  adam?.dispose();
  adamw?.dispose();
  model.dispose();
  return losses;
}
