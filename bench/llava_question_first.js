/**
 * llava trained question-first from stage 2 on (docs/lab02-plan.md, "The tower tuned too, and llava asked question-first"):
 * the committed plan (`pretrainLlava`, seed 0) with the first user turn of every stage-2 conversation written
 * "{question}\n<image>" instead of LLaVA's "<image>\n{question}", so that every image token can read the question
 * (InstructBLIP's instruction-aware reading, here through the LLM's causal attention). Stage 1 (image, then caption) is
 * unchanged. The library has no option for it: this bench wraps `tokenizeConversation` for its own run. The folder's card
 * is measured as `mllm-labs eval` measures llava (image first, so its VQA and POPE there are not this model's format);
 * measure POPE in its format with `LLAVA_DIR=OUT node bench/llava_binding_levers.js question-first`.
 * `node bench/llava_question_first.js OUT` (OUT a new folder whose parent holds `vision`, `language` and, for the card's
 * blind baseline, `llava-blind`, e.g. links to data/checkpoints; about 30 minutes on 2 cores).
 */
"use strict";
const fs = require("fs");
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

const out = process.argv[2];
if (!out) throw new Error("usage: node bench/llava_question_first.js OUT (a new folder)");
if (fs.existsSync(out)) throw new Error(`OUT ${JSON.stringify(out)} exists; give a new folder (nothing is overwritten)`);
const conversation = dist("data/conversation");
const { IMAGE_PLACEHOLDER } = conversation;
const tokenizeImageFirst = conversation.tokenizeConversation;
let moved = 0;
// `pretrainLlava` calls the module's export at each use, so this wrapper is what its stage 2 tokenizes with.
conversation.tokenizeConversation = (tokenizer, turns, options) => {
  const first = turns.findIndex((turn) => turn.from === "human");
  const lead = `${IMAGE_PLACEHOLDER}\n`;
  return tokenizeImageFirst(
    tokenizer,
    turns.map((turn, k) => {
      if (k !== first || !turn.value.startsWith(lead)) return turn;
      moved++;
      return { ...turn, value: `${turn.value.slice(lead.length)}\n${IMAGE_PLACEHOLDER}` };
    }),
    options,
  );
};

void (async () => {
  await dist("engine/init").initEngine({ backend: "native" });
  const started = Date.now();
  const { model, card } = await dist("pretrain/llava").pretrainLlava({
    world: path.join(root, "data/world"),
    out: path.resolve(out),
    log: console.log,
  });
  model.dispose();
  if (moved === 0) throw new Error("no conversation was tokenized question-first: the wrapper was not used");
  console.log(JSON.stringify({ out, moved, seconds: Math.round((Date.now() - started) / 1000), metrics: card.metrics }));
})();
