/**
 * Lab 03's design measurements (docs/lab03-plan.md):
 * 1. What the per-frame features keep of *where* the object is: ridge probes of a single object's
 *    center (x, y in pixels) from (a) the CLIP tower's tokens, class + 2×2-pooled patches (VideoLLaMA
 *    here), (b) lab 01's image Q-Former queries (the blip2 checkpoint's 8 queries, Video-LLaMA's choice),
 *    (c) the class token alone; on fresh one-object clips (world generator, seed 9001), split by clip.
 * 2. What the frozen audio encoder hears in a 0.2 s segment: its own 41-way head on the audio test
 *    split's sound events, on the whole 1 s clip and on each clip's loudest 0.2 s segment.
 * `node bench/video_llama_features.js [clips]` (default 300 clips drawn, about half with one object);
 * writes the features to a temporary folder and runs the probe in Python (numpy).
 */
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawnSync } = require("child_process");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { sampleVideo } = dist("data/video");
const { sceneSvg, svgToRgb } = dist("data/scene");
const { toChannelsFirst, openSplit, readClip } = dist("data/loaders");
const { segmentLogMel } = dist("data/temporal_sampling");
const { whisperLogMelValues } = dist("preprocess/whisper_mel");
const { loadBlip2Pipeline } = dist("pretrain/blip2");
const { loadAudioEncoder } = dist("io/pretrained");
const { Random } = dist("util/random");

const root = path.join(__dirname, "..");
const drawn = Number(process.argv[2] ?? 300);

async function framesProbe(out) {
  const random = new Random(9001);
  const clips = [];
  for (let k = 0; k < drawn; k++) {
    const clip = sampleVideo(random, 12);
    if (clip.tracks.length === 1) clips.push(clip);
  }
  const frames = clips.flatMap((clip) => clip.frames);
  const pixels = new Float32Array(frames.length * 3 * 64 * 64);
  for (let f = 0; f < frames.length; f++)
    toChannelsFirst(await svgToRgb(sceneSvg(frames[f])), 0, 64, "clip", pixels, f * 3 * 64 * 64);
  const targets = clips.flatMap((clip, c) => clip.tracks[0].positions.map(([x, y]) => [c, x, y]));
  const pipeline = loadBlip2Pipeline(path.join(root, "data/checkpoints/blip2"));
  const kinds = { patches: [], queries: [], cls: [] };
  for (let start = 0; start < frames.length; start += 64) {
    const size = Math.min(64, frames.length - start);
    const batch = tf.tensor4d(pixels.subarray(start * 3 * 4096, (start + size) * 3 * 4096), [size, 3, 64, 64]);
    const [patches, queries, cls] = tf.tidy(() => {
      const tokens = pipeline.imageFeatures(batch); // [b, 65, 128]
      const grid = tokens.slice([0, 1, 0], [size, 64, 128]).reshape([size, 8, 8, 128]);
      const pooled = tf.avgPool(grid, 2, 2, "valid").reshape([size, 16 * 128]);
      const classToken = tokens.slice([0, 0, 0], [size, 1, 128]).reshape([size, 128]);
      return [tf.concat([classToken, pooled], 1), pipeline.bridge.queryOutputs(tokens).queries.reshape([size, -1]), classToken];
    });
    for (const [name, t] of [
      ["patches", patches],
      ["queries", queries],
      ["cls", cls],
    ])
      kinds[name].push(await t.data());
    tf.dispose([batch, patches, queries, cls]);
  }
  for (const [name, parts] of Object.entries(kinds)) {
    const joined = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) joined.set(p, (offset += p.length) - p.length);
    fs.writeFileSync(path.join(out, `${name}.f32`), Buffer.from(joined.buffer));
  }
  fs.writeFileSync(path.join(out, "targets.json"), JSON.stringify({ frames: frames.length, clips: clips.length, targets }));
  pipeline.dispose?.();
}

async function audioProbe() {
  const encoder = loadAudioEncoder(path.join(root, "data/checkpoints/audio"));
  const labels = encoder.config.labels;
  const split = openSplit(path.join(root, "data/world"), "audio", "test");
  const events = split.records.filter((r) => r.kind === "event");
  let whole = 0;
  let loudest = 0;
  let meanOfSegments = 0;
  for (const record of events) {
    const samples = readClip(path.join(split.dir, record.audio));
    const full = tf.tensor3d(whisperLogMelValues(samples, { frames: 100 }), [1, 80, 100]);
    const seg = segmentLogMel(samples); // 5 × [80, 20]
    const segments = tf.tensor3d(seg.values, [seg.segments, 80, seg.frames]);
    const [a, b, energy] = tf.tidy(() => [
      encoder.forward(full).logits.argMax(-1),
      encoder.forward(segments).logits,
      segments.mean([1, 2]),
    ]);
    const best = (await energy.argMax().data())[0];
    const perSegment = await b.argMax(-1).data();
    const averaged = (await tf.tidy(() => b.softmax().mean(0).argMax()).data())[0];
    if (labels[(await a.data())[0]] === record.label) whole++;
    if (labels[perSegment[best]] === record.label) loudest++;
    if (labels[averaged] === record.label) meanOfSegments++;
    tf.dispose([full, segments, a, b, energy]);
  }
  encoder.dispose();
  return {
    events: events.length,
    whole_clip: whole / events.length,
    loudest_segment: loudest / events.length,
    segments_averaged: meanOfSegments / events.length,
    chance: 1 / 30,
  };
}

void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "vl-probe-"));
  try {
    const t0 = Date.now();
    await framesProbe(out);
    const probe = spawnSync("python3", [path.join(__dirname, "video_llama_probe.py"), out], { encoding: "utf8" });
    if (probe.status !== 0) throw new Error(`probe failed: ${probe.stderr}`);
    console.log(probe.stdout.trim());
    console.log(JSON.stringify({ suite: "audio_segments", ...(await audioProbe()) }));
    console.log(JSON.stringify({ suite: "video_llama_features", seconds: (Date.now() - t0) / 1000 }));
  } finally {
    // The probe's feature files go whether the probe finished or failed.
    fs.rmSync(out, { recursive: true, force: true });
  }
})();
