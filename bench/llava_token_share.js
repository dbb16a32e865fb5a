/**
 * How much of lab 02's stage-2 loss each set carries (docs/lab02-plan.md, "Sentiment and the loss average"): the card's
 * mixture (`llavaTrainingData` with `LLAVA_PLAN`, seed 0), each conversation tokenized as stage 2 does, and per set the
 * conversations, their mean supervised tokens, and their share of the batch's supervised tokens (what the `token`
 * average weighs) beside their share of the conversations (what the `conversation` average weighs).
 * `node bench/llava_token_share.js` (about 20 s; reads data/world and data/checkpoints/language).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const { llavaTrainingData, LLAVA_PLAN } = dist("pretrain/llava");
const { loadTokenizer } = dist("tokenizer/tokenizer");
const { tokenizeConversation, IGNORE_INDEX } = dist("data/conversation");
const { Random } = dist("util/random");

void (async () => {
  const tokenizer = loadTokenizer(path.join(root, "data/checkpoints/language"));
  const data = await llavaTrainingData(path.join(root, "data/world"), LLAVA_PLAN, 0, false);
  const random = new Random(5);
  const supervised = new Map(); // set → supervised tokens per conversation
  for (const example of data.stage2) {
    const tokenized = tokenizeConversation(tokenizer, example.conversation(random), { imageTokens: 64, blind: true });
    const count = tokenized.labels.filter((label) => label !== IGNORE_INDEX).length;
    supervised.set(example.kind, [...(supervised.get(example.kind) ?? []), count]);
  }
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  const totalTokens = sum([...supervised.values()].map(sum));
  for (const [set, counts] of supervised)
    console.log(
      JSON.stringify({
        set,
        conversations: counts.length,
        mean_supervised_tokens: Number((sum(counts) / counts.length).toFixed(1)),
        token_average_share: Number((sum(counts) / totalTokens).toFixed(3)),
        conversation_average_share: Number((counts.length / data.stage2.length).toFixed(3)),
      }),
    );
})();
