/**
 * An LLM deeper from its pretraining, under llava (docs/lab02-plan.md, "The tower tuned too, and llava asked
 * question-first"): the language backbone pretrained by its own plan (`pretrainLanguage`, seed 0) with LAYERS blocks
 * instead of 4, written to OUT/language, then llava's committed plan (`pretrainLlava`) on it, written to OUT/llava.
 * The library's backbone config has no depth option: this bench wraps `LlamaForCausalLM` for the language run only.
 * Measure POPE's binding after the short tune with `LLAVA_DIR=OUT/llava node bench/llava_binding_levers.js`.
 * `node bench/llava_deeper_llm.js OUT [LAYERS=8]` (OUT a folder holding `vision` and, for the card's blind baseline,
 * `llava-blind`, e.g. links to data/checkpoints, and no `language` or `llava` yet; with 8 blocks about 18 + 40 minutes
 * on 2 cores).
 */
"use strict";
const fs = require("fs");
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

const [out, layers] = [process.argv[2], Number(process.argv[3] ?? 8)];
if (!out) throw new Error("usage: node bench/llava_deeper_llm.js OUT [LAYERS=8]");
if (!(Number.isInteger(layers) && layers > 0)) throw new Error(`LAYERS must be a positive integer, got ${process.argv[3]}`);
for (const name of ["language", "llava"])
  if (fs.existsSync(path.join(out, name)))
    throw new Error(`${path.join(out, name)} exists; give a folder without it (nothing is overwritten)`);
if (!fs.existsSync(path.join(out, "vision", "config.json")))
  throw new Error(`${path.join(out, "vision")} is missing: link data/checkpoints/vision there`);

void (async () => {
  await dist("engine/init").initEngine({ backend: "native" });
  const started = Date.now();
  const world = path.join(root, "data/world");
  const llama = dist("models/llama");
  const Llama = llama.LlamaForCausalLM;
  // `pretrainLanguage` builds its model through the module's export, so this subclass is what it trains.
  llama.LlamaForCausalLM = class extends Llama {
    constructor(config, ...rest) {
      super({ ...config, numLayers: layers }, ...rest);
    }
  };
  let language;
  try {
    language = await dist("pretrain/language").pretrainLanguage({ world, out: path.resolve(out, "language"), log: console.log });
  } finally {
    llama.LlamaForCausalLM = Llama;
  }
  if (language.model.config.numLayers !== layers)
    throw new Error(`the language backbone has ${language.model.config.numLayers} blocks, expected ${layers}`);
  console.log(JSON.stringify({ language: language.card.metrics, seconds: Math.round((Date.now() - started) / 1000) }));
  language.model.dispose();
  const { model, card } = await dist("pretrain/llava").pretrainLlava({
    world,
    out: path.resolve(out, "llava"),
    log: console.log,
  });
  console.log(JSON.stringify({ layers: model.config.text.numLayers, stage_seconds: card.stage_seconds, metrics: card.metrics }));
  model.dispose();
})();
