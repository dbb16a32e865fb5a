#!/usr/bin/env node
/**
 * Re-measures a VideoLLaMA checkpoint with the library's current evaluation and rewrites its card.json and README.md
 * (metrics, baselines, counts, quick eval; the weights are not touched; the card keeps its earlier metrics and the
 * reason under `rescored`). Run after `npm run build`.
 *
 * `node scripts/rescore-videollama.js CHECKPOINT "REASON"` (e.g. data/checkpoints/videollama); prints what changed.
 */
"use strict";
const path = require("path");
const { initEngine, closeEngine } = require("../dist/src/engine/init");
const { rescoreVideoLlamaCard } = require("../dist/src/pretrain/videollama");

const [directory, reason] = process.argv.slice(2);
if (!directory || !reason) {
  console.error('usage: node scripts/rescore-videollama.js CHECKPOINT "REASON" (why the card is rescored)');
  process.exit(2);
}
void (async () => {
  await initEngine({ backend: "native", verbose: false });
  try {
    const { changed } = await rescoreVideoLlamaCard(directory, path.join(__dirname, "../data/world"), reason, {
      log: console.log,
    });
    for (const [name, [before, after]] of Object.entries(changed)) console.log(`${name}: ${before} → ${after}`);
  } finally {
    closeEngine();
  }
})();
