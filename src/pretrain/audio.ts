/**
 * The audio backbone: the labs' audio encoder (models/audio_encoder.ts)
 * pretrained to classify the world's sounds — 30 sound events (6 colors set
 * the pitch × 5 shapes set the timbre) and 11 spoken words (the color and
 * shape names, when espeak-ng is installed) — from Whisper log-mel input.
 *
 * It trains on clips it synthesises with the world's generators (a seed of
 * its own, so never the test clips) plus the committed train split, and is
 * measured on the committed test split.
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { AudioEncoder, AUDIO_ENCODER_PRESETS } from "../models/audio_encoder";
import { AdamW } from "../train/adamw";
import { crossEntropy } from "../train/loss";
import { Random } from "../util/random";
import { openSplit, recordBatches, logMelTensor, readClip } from "../data/loaders";
import { soundEventClip, spokenWordClip, speechSynthesizer } from "../data/audio";
import { whisperLogMelValues } from "../preprocess/whisper_mel";
import { COLOR_NAMES, SHAPE_NAMES } from "../data/vocabulary";
import { runTraining, machineRecord, writeCheckpoint, type CheckpointCard } from "./common";
import { audioEncoderConfigToHF } from "../models/audio_encoder_spec";
import type { PretrainArgs } from "./vision";

/** The classes: every "<color> <shape>" event, then every word. */
export const AUDIO_LABELS: readonly string[] = [
  ...COLOR_NAMES.flatMap((c) => SHAPE_NAMES.map((s) => `${c} ${s}`)),
  ...COLOR_NAMES,
  ...SHAPE_NAMES,
];

/** Log-mel [80, 100] of a 1 s clip. */
const logMel = (samples: Float32Array) => whisperLogMelValues(samples, { frames: 100 });

export async function pretrainAudio(
  args: PretrainArgs & { syntheticClips?: number },
): Promise<{ model: AudioEncoder; card: CheckpointCard }> {
  const log = args.log ?? console.log;
  const steps = args.steps ?? 1500;
  const batchSize = args.batchSize ?? 32;
  const seed = args.seed ?? 0;
  const synthetic = args.syntheticClips ?? 2400;
  const speech = speechSynthesizer() !== undefined;
  // Training clips: synthesised (seeded) + the committed train split.
  const random = new Random(0x5eed + seed);
  const features: Float32Array[] = [];
  const labels: number[] = [];
  for (let k = 0; k < synthetic; k++) {
    if (speech && random.next() < 0.3) {
      const word = [...COLOR_NAMES, ...SHAPE_NAMES][random.int(0, 11)];
      features.push(logMel(spokenWordClip(random, word)));
      labels.push(AUDIO_LABELS.indexOf(word));
    } else {
      const color = COLOR_NAMES[random.int(0, COLOR_NAMES.length)];
      const shape = SHAPE_NAMES[random.int(0, SHAPE_NAMES.length)];
      features.push(logMel(soundEventClip(random, color, shape)));
      labels.push(AUDIO_LABELS.indexOf(`${color} ${shape}`));
    }
  }
  const train = openSplit(args.world, "audio", "train");
  for (const r of train.records) {
    features.push(logMel(readClip(path.join(train.dir, r.audio))));
    labels.push(AUDIO_LABELS.indexOf(r.label));
  }
  log(
    `audio: ${features.length} training clips (${synthetic} synthesised${speech ? " with speech" : ", no espeak-ng: events only"})`,
  );
  const all = tf.tensor3d(concat(features), [features.length, 80, 100]);
  const allLabels = tf.tensor1d(labels, "int32");
  const model = new AudioEncoder({ ...AUDIO_ENCODER_PRESETS["audio-nano"], labels: AUDIO_LABELS, seed });
  const optimizer = new AdamW({ learningRate: 1e-3, weightDecay: 0.05 });
  const indices = features.map((_, k) => k);
  let epoch = 0;
  let order = [...recordBatches(indices, batchSize, { seed, epoch, dropLast: true })];
  const run = await runTraining(
    "audio",
    steps,
    optimizer,
    1e-3,
    () => {
      if (order.length === 0) order = [...recordBatches(indices, batchSize, { seed, epoch: ++epoch, dropLast: true })];
      const rows = tf.tensor1d(order.shift()!, "int32");
      const inputs = tf.gather(all, rows);
      const targets = tf.gather(allLabels, rows);
      const loss = optimizer.minimize(() => crossEntropy(model.forward(inputs).logits!, targets), model.trainableParameters());
      tf.dispose([rows, inputs, targets]);
      return loss;
    },
    log,
  );
  tf.dispose([all, allLabels]);
  optimizer.dispose();
  const metrics = await evaluateAudio(model, args.world);
  const card: CheckpointCard = {
    name: "audio",
    title: "mllm-labs audio backbone: tiny audio encoder on the world's sounds",
    description:
      "A transformer over Whisper log-mel frames (80 bins, 4 frames per token, 3 layers, width 128, mean pooling) with a 41-way head (30 sound events, 11 spoken words). The VideoLLaMA lab freezes it as the audio encoder.",
    model_type: "mllm_audio_encoder",
    parameters: model.parameterCount(),
    steps,
    batch_size: batchSize,
    train_seconds: Math.round(run.seconds),
    ...machineRecord(),
    seed,
    data: `${synthetic} clips synthesised by the world's generators (seed ${0x5eed + seed}${speech ? ", speech by espeak-ng" : ", no speech"}) + data/world/audio train split`,
    loss_curve: run.curve,
    loss_every: run.every,
    metrics,
    metric_notes: AUDIO_METRIC_NOTES,
    command: "npm run pretrain -- audio",
  };
  if (!args.dryRun) await writeCheckpoint(args.out, model, audioEncoderConfigToHF(model.config), card);
  return { model, card };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export const AUDIO_METRIC_NOTES: Record<string, string> = {
  test_accuracy: "41-way class of the test split's clips; chance 1/41",
  event_accuracy: "sound events only, color and shape both right",
  event_color_accuracy: "sound events, the color (pitch) right; chance 1/6",
  event_shape_accuracy: "sound events, the shape (timbre) right; chance 1/5",
  speech_accuracy: "spoken words only",
};

/** Test-split accuracies. */
export async function evaluateAudio(model: AudioEncoder, world: string): Promise<Record<string, number>> {
  const test = openSplit(world, "audio", "test");
  const labels = model.config.labels;
  let right = 0,
    events = 0,
    eventRight = 0,
    colorRight = 0,
    shapeRight = 0,
    words = 0,
    wordRight = 0;
  for (const rows of recordBatches(test.records, 64)) {
    const inputs = logMelTensor(rows.map((r) => path.join(test.dir, r.audio)));
    const best = tf.tidy(() => model.forward(inputs).logits!.argMax(1));
    const predicted = (await best.data()) as Int32Array;
    tf.dispose([inputs, best]);
    rows.forEach((r, i) => {
      const guess = labels[predicted[i]] ?? "";
      right += +(guess === r.label);
      if (r.kind === "event") {
        events++;
        eventRight += +(guess === r.label);
        const [color, shape] = guess.split(" ");
        colorRight += +(color === r.color && shape !== undefined);
        shapeRight += +(shape === r.shape);
      } else {
        words++;
        wordRight += +(guess === r.label);
      }
    });
  }
  const metrics: Record<string, number> = {
    test_accuracy: right / test.records.length,
    event_accuracy: eventRight / Math.max(1, events),
    event_color_accuracy: colorRight / Math.max(1, events),
    event_shape_accuracy: shapeRight / Math.max(1, events),
    test_clips: test.records.length,
  };
  if (words) metrics.speech_accuracy = wordRight / words;
  return metrics;
}
