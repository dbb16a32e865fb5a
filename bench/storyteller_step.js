/**
 * The storyteller's training step with and without the object-map objective (src/pretrain/object_map.ts), on the same
 * batches of 16 stored training stories, timed in alternation so that a shared machine's load falls on both alike.
 * Prints one JSON line per variant (wall and CPU seconds per step) and their ratio: the objective runs the projector a
 * second time and adds a read-out, so the ratio says what the objective costs the card's 1,000 steps.
 * `node bench/storyteller_step.js [ROUNDS=8]` (each round: one step of each variant, in alternating order; one warm-up
 * round first).
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { storedStories, storytellerConversation, withImagePooling } = dist("pretrain/storyteller");
const { featureCache, loadLlava } = dist("pretrain/llava");
const { LlavaTrainer, llavaBatch, disposeBatch } = dist("pretrain/llava_training");
const { ObjectMapHead, objectMapTargets, tokenGridSide } = dist("pretrain/object_map");
const { tokenizeConversation } = dist("data/conversation");

const root = path.join(__dirname, "..");
const rounds = Number(process.argv[2] ?? 8);
const STORED_TRAIN_STORIES = 300;
if (!(Number.isInteger(rounds) && rounds >= 1 && 16 * (rounds + 1) <= STORED_TRAIN_STORIES))
  throw new Error(
    `storyteller_step: ROUNDS must be an integer from 1 to ${Math.floor(STORED_TRAIN_STORIES / 16) - 1} (batches of 16 stored stories), got ${process.argv[2]}`,
  );
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

(async () => {
  const engine = await initEngine({ backend: "native", verbose: false });
  const base = loadLlava(path.join(root, "data/checkpoints/llava"));
  const tokenizer = base.tokenizer;
  const stories = await storedStories(path.join(root, "data/world"), "train", 16 * (rounds + 1));
  const batches = Array.from({ length: rounds + 1 }, (_, k) => stories.slice(16 * k, 16 * (k + 1)));
  const variants = {};
  for (const name of ["story loss", "story loss + object map"]) {
    const model = withImagePooling(base.model, 2);
    const head = name.endsWith("object map") ? new ObjectMapHead(model.config.text.hiddenSize, 13) : undefined;
    const trainer = new LlavaTrainer(model, { stage: 2, ...(head ? { objectMap: { head, weight: 4 } } : {}) });
    const cache = featureCache(
      model,
      stories.flatMap((s) => s.frames),
    );
    await cache.precompute(stories.flatMap((s) => s.frames.map((f) => f.key)));
    variants[name] = { model, head, trainer, cache, wall: 0, cpu: 0 };
  }
  const imageTokens = Object.values(variants)[0].model.imageTokensPerImage;
  const step = async (variant, batchStories) => {
    const batch = {
      ...llavaBatch(
        batchStories.map((s) => tokenizeConversation(tokenizer, storytellerConversation(s.sentences), { imageTokens })),
        tokenizer.padTokenId,
        await variant.cache.features(batchStories.flatMap((s) => s.frames.map((f) => f.key))),
      ),
      ...(variant.head
        ? {
            objectMaps: objectMapTargets(
              batchStories.flatMap((s) => s.annotations.map((a) => a.objects)),
              tokenGridSide(imageTokens),
              variant.model.config.vision.imageSize, // the frames' side: the objects' coordinates
            ),
          }
        : {}),
    };
    const [wall, cpuBefore] = [Date.now(), cpu()];
    const loss = variant.trainer.step(batch);
    await loss.data();
    const seconds = { wall: (Date.now() - wall) / 1000, cpu: cpu() - cpuBefore };
    tf.dispose([loss, variant.trainer.takeObjectMapLoss()].filter(Boolean));
    disposeBatch(batch);
    return seconds;
  };
  for (let round = 0; round <= rounds; round++)
    // the order alternates by round, so that whatever the first step of a round pays (collection of the other's garbage)
    // falls on both alike
    for (const variant of round % 2 ? Object.values(variants).reverse() : Object.values(variants)) {
      const seconds = await step(variant, batches[round]);
      if (round > 0) {
        variant.wall += seconds.wall; // round 0 warms up
        variant.cpu += seconds.cpu;
      }
    }
  const lines = Object.entries(variants).map(([name, v]) => ({
    bench: "storyteller_step",
    variant: name,
    batch: 16,
    rounds,
    wall_seconds_per_step: Number((v.wall / rounds).toFixed(3)),
    cpu_seconds_per_step: Number((v.cpu / rounds).toFixed(3)),
    backend: engine.backend ?? tf.getBackend(),
    threads: process.env.MLLM_THREADS ?? "default",
  }));
  for (const line of lines) console.log(JSON.stringify(line));
  console.log(
    JSON.stringify({
      bench: "storyteller_step",
      ratio: "object map / story loss",
      wall: Number((lines[1].wall_seconds_per_step / lines[0].wall_seconds_per_step).toFixed(3)),
      cpu: Number((lines[1].cpu_seconds_per_step / lines[0].cpu_seconds_per_step).toFixed(3)),
    }),
  );
  for (const v of Object.values(variants)) {
    v.trainer.dispose();
    v.head?.dispose();
    v.cache.clear();
    v.model.dispose();
  }
  base.model.dispose();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
