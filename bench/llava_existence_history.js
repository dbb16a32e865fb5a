/**
 * Does a LLaVA checkpoint answer existence questions from the image or from the conversation's earlier turns
 * (docs/lab02-plan.md, "llava-robust")? On the world's 300 test scenes, two kinds of question, each asked alone (as
 * `evaluateLlava` asks POPE's) and after two earlier turns, "is there a <A>?" "yes", "is there a <B>?" "yes", about two
 * objects A and B of the scene:
 * - a binding pair, absent: the colour of A with the shape of B (A and B differ in both), the right answer "no";
 * - a present pair P, a third object of the scene (A and B are two others), the right answer "yes".
 * The image is the same and the earlier turns are true, so a model that reads the image answers both the same way alone
 * and after them; a model that learnt the rounds' text (half the answers "yes"; a binding pair asked beside the objects
 * it borrows from) answers from the turns. A diagnostic: writes nothing, prints one JSON line.
 * `node bench/llava_existence_history.js [CHECKPOINT=data/checkpoints/llava-robust]` (under a minute).
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
  const { parseYesNo, popeQuestion } = dist("metrics/pope");
  const { model, tokenizer } = loadLlava(checkpoint);
  const split = openSplit(path.join(root, "data/world"), "scenes", "test");
  const items = [];
  for (const record of split.records) {
    const objects = record.objects;
    const has = (color, shape) => objects.some((o) => o.color === color && o.shape === shape);
    // the first binding pair of the scene: A's colour with B's shape, absent
    binding: for (const a of objects)
      for (const b of objects) {
        if (a === b || a.color === b.color || a.shape === b.shape || has(a.color, b.shape)) continue;
        items.push({ record, a, b, question: popeQuestion(a.color, b.shape), answer: "no" });
        break binding;
      }
    // a present object P asked after two others
    if (objects.length >= 3) {
      const [p, a, b] = objects;
      const same = (x, y) => x.color === y.color && x.shape === y.shape;
      if (!same(p, a) && !same(p, b)) items.push({ record, a, b, question: popeQuestion(p.color, p.shape), answer: "yes" });
    }
  }
  const ask = async (list, afterTurns) => {
    const said = [];
    for (let start = 0; start < list.length; start += 64) {
      const chunk = list.slice(start, start + 64);
      const pixels = await imageTensor(
        chunk.map((item) => path.join(split.dir, item.record.image)),
        "clip",
      );
      const messages = chunk.map((item) => [
        ...(afterTurns
          ? [
              { role: "user", content: popeQuestion(item.a.color, item.a.shape) },
              { role: "assistant", content: "yes" },
              { role: "user", content: popeQuestion(item.b.color, item.b.shape) },
              { role: "assistant", content: "yes" },
            ]
          : []),
        { role: "user", content: item.question },
      ]);
      const replies = await chatBatch(model, tokenizer, messages, { pixelValues: pixels }, { maxNewTokens: 6 }); // evaluateLlava's
      pixels.dispose();
      said.push(...replies.map((reply) => parseYesNo(reply.text)));
    }
    return said;
  };
  const result = { checkpoint: path.relative(root, checkpoint) };
  for (const [name, answer] of [
    ["binding_absent_no_rate", "no"],
    ["present_yes_rate", "yes"],
  ]) {
    const list = items.filter((item) => item.answer === answer);
    const rate = (said) => Number((said.filter((s) => s === answer).length / list.length).toFixed(3));
    result[name] = {
      questions: list.length,
      alone: rate(await ask(list, false)),
      after_two_yes_turns: rate(await ask(list, true)),
    };
  }
  model.dispose();
  console.log(JSON.stringify(result));
})();
