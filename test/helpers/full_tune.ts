/**
 * The checks every committed full tune of llava passes (llava-code, llava-robust and their blind twins: the folders of
 * `runLlavaFullTune`): made by the committed plan, with its baselines, in under 30 minutes on 2 cores, and `mllm-labs
 * eval` of the folder recomputing its card. Call at a test file's top level; it registers a `describe` and returns the
 * card (or `has: false` when the folder is not committed, and its tests are skipped).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { evaluateCheckpoint } from "../../src/pretrain/run";
import type { LlavaFullTuneCard } from "../../src/pretrain/llava_full_tune";

const ROOT = path.join(__dirname, "..", "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINTS = path.join(ROOT, "data", "checkpoints");

export function committedFullTune<Card extends LlavaFullTuneCard & { plan: unknown }>(
  name: string,
  plan: Card["plan"],
  baselines: readonly string[],
  evalTimeout = 600_000,
): { has: boolean; card: Card } {
  const folder = path.join(CHECKPOINTS, name);
  const has = fs.existsSync(path.join(folder, "card.json"));
  const card = has ? (JSON.parse(fs.readFileSync(path.join(folder, "card.json"), "utf8")) as Card) : undefined!;
  describe(`committed ${name}`, () => {
    it.runIf(has)("was made by the committed plan, with every baseline beside it, in under 30 minutes on 2 cores", () => {
      expect(card.plan).toEqual(plan);
      expect(card.train_seconds).toBeLessThan(30 * 60); // issue 16: each run under 30 minutes
      expect(card.threads).toMatch(/^2 /);
      expect(Object.keys(card.baselines)).toEqual(expect.arrayContaining([...baselines]));
    });

    it.runIf(has)(
      "mllm-labs eval of the folder recomputes the card's metrics and baselines",
      async () => {
        const before = tf.memory().numTensors;
        const evaluated = await evaluateCheckpoint(folder, WORLD);
        expect(evaluated.metrics).toEqual(card.metrics);
        expect(evaluated.baselines).toEqual(card.baselines);
        expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
      },
      evalTimeout,
    );
  });
  return { has, card };
}
