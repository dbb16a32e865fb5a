#!/usr/bin/env node
/**
 * Generates the labs' data: the sample media of lab 00 and the synthetic world.
 *   npm run data                          data/samples + data/world (--size small, seed 0: what is committed)
 *   npm run data -- --size large          data/world-large (ten times the records; not committed)
 *   npm run data -- --sets scenes,audio   only those sets (and text/, gathered from all sets' annotations)
 *   npm run data -- --seed 7 --out DIR
 * Needs the built library (npm run build). Deterministic: the same seed gives the same bytes.
 */
"use strict";
const path = require("path");

function parse(argv) {
  const args = { size: "small", seed: 0, out: undefined, sets: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === "--size") args.size = value;
    else if (flag === "--seed") args.seed = Number(value);
    else if (flag === "--out") args.out = value;
    else if (flag === "--sets") args.sets = value.split(",").filter(Boolean);
    else
      throw new Error(`unknown argument ${JSON.stringify(flag)}; expected --size small|large, --seed N, --out DIR, --sets a,b`);
    i++;
  }
  return args;
}

async function main() {
  const args = parse(process.argv.slice(2));
  const root = path.join(__dirname, "..");
  const { generateWorld } = require(path.join(root, "dist", "src", "data", "world.js"));
  if (!args.sets) await require("./make-samples.js").makeSamples(path.join(root, "data", "samples"));
  const out = args.out ?? path.join(root, "data", args.size === "large" ? "world-large" : "world");
  const started = Date.now();
  await generateWorld({ out, size: args.size, seed: args.seed, sets: args.sets });
  console.log(`world written to ${path.relative(process.cwd(), out) || "."} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error) => {
  console.error(`make-data: ${error.message}`);
  process.exit(1);
});
