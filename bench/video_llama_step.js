/**
 * VideoLLaMA and the sensor / point bridges: training-step times on the project's backbones
 * (lab 03's schedules in docs/lab03-plan.md), batch 32, in CPU seconds and wall seconds per step:
 * the frozen features (12 frames per clip through the image tower; 5 segments of 0.2 s per soundtrack,
 * log-mel + audio encoder), a video-branch step, an audio-branch step, a joint step (cached features),
 * an IMU-bridge step and a point-bridge step (their encoders train); beside them the language
 * backbone's pretraining step, whose 2-idle-core time the language card records, as the yardstick
 * for a machine shared with other work (as bench/llava_step.js).
 * `node bench/video_llama_step.js [steps]` (default 3 timed steps after one warm-up).
 */
"use strict";
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { VideoLlamaForConditionalGeneration, VIDEO_LLAMA_PRESETS } = dist("models/video_llama");
const { ModalityLlm, MODALITY_LLM_PRESETS } = dist("models/modality_bridge");
const { segmentLogMel } = dist("data/temporal_sampling");
const { openSplit, videoTensor, readClip, storedArray } = dist("data/loaders");
const { languageText } = dist("pipelines/blip2");
const { loadLlama, loadCLIPVision, loadAudioEncoder } = dist("io/pretrained");
const { loadTokenizer } = dist("tokenizer/tokenizer");
const { AdamW } = dist("train/adamw");
const { crossEntropy } = dist("train/loss");

const root = path.join(__dirname, "..");
const checkpoints = path.join(root, "data/checkpoints");
const world = path.join(root, "data/world");
const steps = Number(process.argv[2] ?? 3);
const B = 32;
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Runs `step` once to warm up, then `steps` times; returns CPU-s and wall s per step. */
async function time(step) {
  const warm = step();
  await warm.data();
  warm.dispose();
  const [c0, w0] = [cpu(), Date.now()];
  for (let s = 0; s < steps; s++) {
    const loss = step();
    await loss.data();
    loss.dispose();
  }
  return { cpu: (cpu() - c0) / steps, wall: (Date.now() - w0) / 1000 / steps };
}

/** CPU and wall seconds of `work` once. */
async function once(work) {
  const [c0, w0] = [cpu(), Date.now()];
  const result = await work();
  return { result, cpu: cpu() - c0, wall: (Date.now() - w0) / 1000 };
}

void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const rows = [];
  const language = loadLlama(path.join(checkpoints, "language"));
  const card = JSON.parse(fs.readFileSync(path.join(checkpoints, "language/card.json"), "utf8"));
  {
    const optimizer = new AdamW({ learningRate: 1e-4 });
    const ids = tf.randomUniform([32, 65], 4, language.config.vocabSize, "int32", 3);
    const [inputs, targets] = [ids.slice([0, 0], [32, 64]), ids.slice([0, 1], [32, 64])];
    const yardstick = await time(() =>
      optimizer.minimize(() => crossEntropy(language.apply(inputs), targets), language.trainableParameters()),
    );
    rows.push({ step: "language backbone (yardstick)", T: 64, ...yardstick, idle_estimate: card.train_seconds / card.steps });
    tf.dispose([ids, inputs, targets]);
    optimizer.dispose();
  }
  const factor = rows[0].idle_estimate / rows[0].cpu;
  const tokenizer = loadTokenizer(path.join(checkpoints, "language"));

  // VideoLLaMA on the frozen backbones.
  const model = new VideoLlamaForConditionalGeneration(
    {
      ...VIDEO_LLAMA_PRESETS["video-llama-nano"],
      vision: {},
      audio: { hiddenSize: 1, intermediateSize: 1, numLayers: 1, numHeads: 1 },
      text: language.config,
    },
    {
      vision: loadCLIPVision(path.join(checkpoints, "vision")),
      audio: loadAudioEncoder(path.join(checkpoints, "audio")),
      language,
    },
  );
  const videos = openSplit(world, "videos", "train");
  const records = videos.records.slice(0, B);
  const pixels = await videoTensor(
    records.map((r) => path.join(videos.dir, r.video)),
    12,
  );
  const frames = await once(() => tf.tidy(() => model.frameFeatures(pixels)));
  rows.push({ step: "frame features, 32 clips × 12", T: 0, cpu: frames.cpu, wall: frames.wall });
  const segments = await once(() => {
    const values = records.map((r) => segmentLogMel(readClip(path.join(videos.dir, r.audio))).values);
    const logMel = tf.tensor4d(Float32Array.from(values.flatMap((v) => Array.from(v))), [B, 5, 80, 20]);
    const features = model.segmentFeatures(logMel);
    logMel.dispose();
    return features;
  });
  rows.push({ step: "audio features, 32 clips × 5", T: 0, cpu: segments.cpu, wall: segments.wall });
  const questions = records.map((r) => r.vqa[0]);
  const text = languageText(
    tokenizer,
    questions.map((q) => `question: ${q.question} answer:`),
    questions.map((q) => ` ${q.answer}`),
  );
  const branches = [
    ["video branch", { frameFeatures: frames.result }, model.videoBridge.trainableParameters(), model.config.numVideoQueryTokens],
    [
      "audio branch",
      { segmentFeatures: segments.result },
      model.audioBridge.trainableParameters(),
      model.config.numAudioQueryTokens,
    ],
    [
      "video + audio",
      { frameFeatures: frames.result, segmentFeatures: segments.result },
      model.trainableParameters(),
      model.config.numVideoQueryTokens + model.config.numAudioQueryTokens,
    ],
  ];
  for (const [name, inputs, parameters, prompt] of branches) {
    const optimizer = new AdamW({ learningRate: 1e-4 });
    const forward = () =>
      model.forward({ ...inputs, inputIds: text.inputIds, attentionMask: text.attentionMask, labels: text.labels }).loss;
    rows.push({ step: name, T: prompt + text.inputIds.shape[1], ...(await time(() => optimizer.minimize(forward, parameters))) });
    optimizer.dispose();
  }
  tf.dispose([pixels, frames.result, segments.result, text.inputIds, text.attentionMask, text.labels]);

  // The sensor and point bridges (their encoders train, the LLM stays frozen).
  for (const [name, preset, set, array] of [
    ["IMU bridge", "imu-llm-nano", "sensors", "windows"],
    ["point bridge", "point-llm-nano", "points", "points"],
  ]) {
    const split = openSplit(world, set, "train");
    const bridge = new ModalityLlm({ ...MODALITY_LLM_PRESETS[preset], text: language.config }, language);
    const stored = storedArray(split, array);
    const inputs = stored.slice([0, 0, 0], [B, -1, -1]);
    const prompt = set === "sensors" ? "question: what is the person doing? answer:" : "question: what object is this? answer:";
    const t = languageText(
      tokenizer,
      new Array(B).fill(prompt),
      split.records.slice(0, B).map((r) => ` ${r.caption}`),
    );
    const optimizer = new AdamW({ learningRate: 1e-4 });
    const forward = () => bridge.forward({ inputs, inputIds: t.inputIds, attentionMask: t.attentionMask, labels: t.labels }).loss;
    rows.push({
      step: name,
      T: bridge.config.numQueryTokens + t.inputIds.shape[1],
      ...(await time(() => optimizer.minimize(forward, bridge.trainableParameters()))),
    });
    optimizer.dispose();
    tf.dispose([stored, inputs, t.inputIds, t.attentionMask, t.labels]);
    bridge.removeModule("language_model"); // shared with the VideoLLaMA model: freed once, below
    bridge.dispose();
  }
  model.dispose();
  for (const row of rows) row.idle_estimate ??= row.cpu * factor;
  console.log("step (batch 32)                  T    CPU-s  wall-s  ≈ s on 2 idle cores");
  for (const r of rows)
    console.log(
      `${r.step.padEnd(32)} ${String(r.T).padStart(3)}  ${r.cpu.toFixed(2).padStart(6)}  ${r.wall.toFixed(2).padStart(6)}  ${r.idle_estimate.toFixed(2)}`,
    );
  for (const r of rows) console.log(JSON.stringify({ suite: "video_llama_step", ...r }));
})();
