#!/usr/bin/env node
/**
 * Makes the sample media of lab 00 (deterministic; no randomness, no network):
 *   data/samples/scene.png  64×64 RGB: a red circle, a blue square and a green triangle on white (SVG rasterised by sharp)
 *   data/samples/chirp.wav  1 s at 16 kHz, 16-bit mono: a linear chirp from 300 Hz to 3 kHz with a 20 ms fade in and out
 * Usage: node scripts/make-samples.js [--out DIR]   (default data/samples)
 */
"use strict";
const fs = require("fs");
const path = require("path");

const SCENE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <rect width="64" height="64" fill="#ffffff"/>
  <circle cx="18" cy="18" r="11" fill="#e6194b"/>
  <rect x="36" y="8" width="20" height="20" fill="#4363d8"/>
  <polygon points="32,36 50,60 14,60" fill="#3cb44b"/>
</svg>`;

/** The chirp's samples: sin(2π(f0·t + (f1−f0)·t²/2)) · 0.6 · fade. */
function chirp(sampleRate = 16000, seconds = 1, f0 = 300, f1 = 3000) {
  const n = Math.round(sampleRate * seconds);
  const out = new Float32Array(n);
  const fade = Math.round(0.02 * sampleRate);
  for (let i = 0; i < n; i++) {
    const t = i / sampleRate;
    const phase = 2 * Math.PI * (f0 * t + ((f1 - f0) * t * t) / (2 * seconds));
    const envelope = Math.min(1, i / fade, (n - 1 - i) / fade);
    out[i] = 0.6 * envelope * Math.sin(phase);
  }
  return out;
}

async function makeSamples(outDir) {
  const sharp = require("sharp");
  const wav = require("node-wav");
  fs.mkdirSync(outDir, { recursive: true });
  const png = await sharp(Buffer.from(SCENE_SVG)).removeAlpha().png({ compressionLevel: 9 }).toBuffer();
  const samples = chirp();
  const wavBytes = Buffer.from(wav.encode([samples], { sampleRate: 16000, float: false, bitDepth: 16 }));
  const write = (name, bytes) => {
    const file = path.join(outDir, name);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
    console.log(`wrote ${path.relative(process.cwd(), file)} (${bytes.length} bytes)`);
  };
  write("scene.png", png);
  write("chirp.wav", wavBytes);
}

module.exports = { makeSamples, chirp, SCENE_SVG };

if (require.main === module) {
  const i = process.argv.indexOf("--out");
  const outDir = i > 0 ? process.argv[i + 1] : path.join(__dirname, "..", "data", "samples");
  makeSamples(outDir).catch((error) => {
    console.error(`make-samples: ${error.message}`);
    process.exit(1);
  });
}
