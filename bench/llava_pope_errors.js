/**
 * Where a LLaVA checkpoint's POPE answers go wrong (docs/lab02-plan.md, "llava-robust"): the eval's own questions on the
 * world's 300 test scenes (buildPopeQuestions, seed 0, three present pairs per image), asked as `evaluateLlava` asks them
 * (one question, the image, greedy), then the present objects' recall by size, colour, shape and the scene's object
 * count, and the "yes" said to absent pairs by what they share with the scene (its colour, its shape, neither). A
 * diagnostic: it writes nothing and prints one JSON line.
 * `node bench/llava_pope_errors.js [CHECKPOINT=data/checkpoints/llava-robust]` (about a minute per checkpoint).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

void (async () => {
  const checkpoint = path.resolve(process.argv[2] ?? path.join(root, "data/checkpoints/llava-robust"));
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava } = dist("pretrain/llava");
  const { chatBatch } = dist("pipelines/llava_chat");
  const { imageTensor, openSplit } = dist("data/loaders");
  const { buildPopeQuestions, parseYesNo, POPE_NEGATIVES } = dist("metrics/pope");
  const { model, tokenizer } = loadLlava(checkpoint);
  const split = openSplit(path.join(root, "data/world"), "scenes", "test");
  const byId = new Map(split.records.map((r) => [r.id, r]));
  const tally = {};
  const count = (table, key, right) => {
    tally[table] ??= {};
    tally[table][key] ??= { asked: 0, right: 0 };
    tally[table][key].asked++;
    if (right) tally[table][key].right++;
  };
  for (const negatives of POPE_NEGATIVES) {
    const questions = buildPopeQuestions(split.records, { negatives, perImage: 3, seed: 0 });
    for (let start = 0; start < questions.length; start += 64) {
      const chunk = questions.slice(start, start + 64);
      const pixels = await imageTensor(
        chunk.map((q) => path.join(split.dir, byId.get(q.imageId).image)),
        "clip",
      );
      const replies = await chatBatch(
        model,
        tokenizer,
        chunk.map((q) => [{ role: "user", content: q.question }]),
        { pixelValues: pixels },
        { maxNewTokens: 6 }, // evaluateLlava's short answers
      );
      pixels.dispose();
      chunk.forEach((q, k) => {
        const said = parseYesNo(replies[k].text);
        const objects = byId.get(q.imageId).objects;
        if (q.answer === "yes") {
          if (negatives !== "random") return; // the present pairs: counted once
          const object = objects.find((o) => o.color === q.color && o.shape === q.shape);
          const right = said === "yes";
          count("recall_by_size", object.size, right);
          count("recall_by_color", object.color, right);
          count("recall_by_shape", object.shape, right);
          count("recall_by_objects_in_scene", String(objects.length), right);
        } else {
          const sharesColor = objects.some((o) => o.color === q.color);
          const sharesShape = objects.some((o) => o.shape === q.shape);
          const kind =
            sharesColor && sharesShape ? "colour and shape" : sharesColor ? "colour" : sharesShape ? "shape" : "neither";
          count(`no_rate_${negatives}_by_shared`, kind, said === "no");
          count("no_rate_by_objects_in_scene", String(objects.length), said === "no");
        }
      });
    }
  }
  model.dispose();
  const rates = Object.fromEntries(
    Object.entries(tally).map(([table, rows]) => [
      table,
      Object.fromEntries(
        Object.entries(rows).map(([key, { asked, right }]) => [key, `${(right / asked).toFixed(3)} of ${asked}`]),
      ),
    ]),
  );
  console.log(JSON.stringify({ checkpoint: path.relative(root, checkpoint), ...rates }));
})();
