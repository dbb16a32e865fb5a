/**
 * Loaders of the world's datasets: read a split's records, then stream
 * batches as the tensors the models expect — images as CLIP-normalised
 * [B, 3, S, S], audio as Whisper log-mel [B, 80, frames], videos as
 * [B, F, 3, S, S] frame stacks, sensor windows [B, T, 6], point clouds
 * [B, N, 6]. A missing or corrupt file is an error naming it.
 *
 * Batches are built on demand (an async generator), so a split never needs
 * to sit in memory as tensors; the caller disposes each batch's tensors.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { Random } from "../util/random";
import { SPLITS, type Split } from "./dataset_writer";
import { readJsonlFile } from "./world";
import { readWav } from "../io/wav";
import { whisperLogMelValues } from "../preprocess/whisper_mel";
import { CLIP_MEAN, CLIP_STD, decodeRgb } from "../preprocess/clip_image";
import { SafetensorsFile } from "../io/safetensors";
import { SAMPLE_RATE } from "./audio";

/** A split of one set: its folder and its records. */
export interface DatasetSplit<R = any> {
  /** The set's folder (media paths in records are relative to it). */
  readonly dir: string;
  readonly set: string;
  readonly split: Split;
  readonly records: readonly R[];
}

/** Reads `<root>/<set>/<split>.jsonl`; errors say how to make the world when it is missing. */
export function openSplit<R = any>(root: string, set: string, split: Split): DatasetSplit<R> {
  if (!SPLITS.includes(split)) throw new Error(`openSplit: split must be one of ${SPLITS.join(", ")}, got ${JSON.stringify(split)}`);
  const dir = path.join(root, set);
  if (!fs.existsSync(dir)) throw new Error(`openSplit: no dataset folder ${dir} (is ${root} the world folder? \`npm run data\` makes it)`);
  return { dir, set, split, records: readJsonlFile(path.join(dir, `${split}.jsonl`)) };
}

export interface BatchOrderArgs {
  /** Shuffle with this seed (each epoch reshuffles from it); none keeps file order. */
  readonly seed?: number;
  /** Drop a last, smaller batch. Default false. */
  readonly dropLast?: boolean;
  /** Epoch number mixed into the seed. Default 0. */
  readonly epoch?: number;
  /**
   * Each record's length (tokens): when given, batches are grouped by length as transformers' `group_by_length` does
   * (the shuffled order cut into megabatches of {@link BatchOrderArgs.megabatchBatches} batches, each sorted longest
   * first), so that a batch pads little; with a seed, the batches are then dealt in a random order. Default none (no
   * grouping).
   */
  readonly lengths?: readonly number[];
  /** Batches per megabatch when grouping by length. Default 50 (transformers' `mega_batch_mult`), fewer for few records. */
  readonly megabatchBatches?: number;
}

/**
 * A shuffled order grouped by length: megabatches of `megabatchBatches × batchSize` consecutive indices, each sorted by
 * length, longest first (stable). transformers' `get_length_grouped_indices` (trainer_pt_utils.py), without its swap of
 * the longest record to the front (there to meet an out-of-memory error early).
 */
export function lengthGroupedOrder(
  order: readonly number[],
  lengths: readonly number[],
  batchSize: number,
  megabatchBatches = Math.max(1, Math.min(50, Math.floor(order.length / (batchSize * 4)))),
): number[] {
  if (!Number.isInteger(megabatchBatches) || megabatchBatches <= 0)
    throw new Error(`lengthGroupedOrder: megabatchBatches must be a positive integer, got ${megabatchBatches}`);
  const size = megabatchBatches * batchSize;
  const grouped: number[] = [];
  for (let start = 0; start < order.length; start += size)
    grouped.push(...order.slice(start, start + size).sort((a, b) => lengths[b] - lengths[a]));
  return grouped;
}

/**
 * The records in batches of `batchSize`, shuffled when a seed is given. With `lengths`, batches are grouped by length
 * ({@link lengthGroupedOrder}) and then, with a seed, dealt in a random order, as LLaVA's `group_by_modality_length`
 * deals its single-modality megabatches: sorted megabatches alone would replay the same long-to-short sequence every 50
 * batches, a curriculum that follows length, and so here follows the task (scene conversations are the long ones).
 */
export function* recordBatches<R>(records: readonly R[], batchSize: number, args: BatchOrderArgs = {}): Generator<R[]> {
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`recordBatches: batchSize must be a positive integer, got ${batchSize}`);
  const lengths = args.lengths;
  if (lengths !== undefined && lengths.length !== records.length)
    throw new Error(`recordBatches: ${lengths.length} lengths for ${records.length} records; expected one per record`);
  const random = args.seed === undefined ? undefined : new Random((args.seed + 7919 * (args.epoch ?? 0)) >>> 0);
  const indices = records.map((_, k) => k);
  // The same permutation as shuffling the records themselves (Fisher–Yates draws depend only on the count).
  const shuffled = random ? random.shuffle(indices) : indices;
  const order = lengths ? lengthGroupedOrder(shuffled, lengths, batchSize, args.megabatchBatches) : shuffled;
  let batches: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    if (batch.length < batchSize && args.dropLast) break;
    batches.push(batch);
  }
  if (lengths && random) batches = random.shuffle(batches);
  for (const batch of batches) yield batch.map((k) => records[k]);
}

/** How pixel values are scaled: "clip" (CLIP's mean/std), "unit" ([0, 1]) or "raw" (0…255). */
export type PixelNormalization = "clip" | "unit" | "raw";

/** Channel-first float pixels of a `size`×`size` region (starting at column `left`) of an RGB image, normalised, written to `out` at `offset`. */
export function toChannelsFirst(rgb: { data: Uint8Array; width: number }, left: number, size: number, normalization: PixelNormalization, out: Float32Array, offset: number): void {
  for (let c = 0; c < 3; c++) {
    const [mean, std] = normalization === "clip" ? [CLIP_MEAN[c], CLIP_STD[c]] : [0, 1];
    const scale = normalization === "raw" ? 1 : 1 / 255;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const value = rgb.data[(y * rgb.width + left + x) * 3 + c] * scale;
        out[offset + (c * size + y) * size + x] = (value - mean) / std;
      }
    }
  }
}

/** Square images → [B, 3, S, S] float32 (NCHW, as CLIP's pixel_values). All must have the same size. */
export async function imageTensor(files: readonly string[], normalization: PixelNormalization = "clip"): Promise<tf.Tensor4D> {
  const images = await Promise.all(files.map((file) => decodeRgb(file)));
  const size = images[0]?.height;
  if (size === undefined) throw new Error("imageTensor: no files");
  images.forEach((image, k) => {
    if (image.width !== size || image.height !== size) throw new Error(`image ${files[k]} is ${image.width}×${image.height}; expected ${size}×${size} like the batch's first image`);
  });
  const out = new Float32Array(files.length * 3 * size * size);
  images.forEach((image, k) => toChannelsFirst(image, 0, size, normalization, out, k * 3 * size * size));
  return tf.tensor4d(out, [files.length, 3, size, size]);
}

/** Filmstrips of F square frames → [B, F, 3, S, S]. */
export async function videoTensor(files: readonly string[], frames: number, normalization: PixelNormalization = "clip"): Promise<tf.Tensor5D> {
  const strips = await Promise.all(files.map((file) => decodeRgb(file)));
  const size = strips[0]?.height;
  if (size === undefined) throw new Error("videoTensor: no files");
  const frameSize = 3 * size * size;
  const out = new Float32Array(files.length * frames * frameSize);
  strips.forEach((strip, k) => {
    if (strip.width !== frames * size || strip.height !== size) throw new Error(`video ${files[k]} is ${strip.width}×${strip.height}; expected a filmstrip of ${frames} frames of ${size}×${size}`);
    for (let f = 0; f < frames; f++) toChannelsFirst(strip, f * size, size, normalization, out, (k * frames + f) * frameSize);
  });
  return tf.tensor5d(out, [files.length, frames, 3, size, size]);
}

/** A 16 kHz mono WAV file's samples; errors name the file and what was expected. */
export function readClip(file: string): Float32Array {
  const wave = readWav(file);
  if (wave.sampleRate !== SAMPLE_RATE) throw new Error(`audio ${file} is at ${wave.sampleRate} Hz; expected ${SAMPLE_RATE} Hz`);
  if (wave.channels.length !== 1) throw new Error(`audio ${file} has ${wave.channels.length} channels; expected mono`);
  return wave.channels[0];
}

/** WAV files → Whisper log-mel [B, 80, frames] (frames = 100 for 1 s). */
export function logMelTensor(files: readonly string[], frames = 100, melBins = 80): tf.Tensor3D {
  const out = new Float32Array(files.length * melBins * frames);
  files.forEach((file, k) => out.set(whisperLogMelValues(readClip(file), { frames, melBins }), k * melBins * frames));
  return tf.tensor3d(out, [files.length, melBins, frames]);
}

/** A split's stored array (`sensors` → windows [N, T, 6], `points` → points [N, P, 6]) as one tensor. */
export function storedArray(split: DatasetSplit, name: "windows" | "points"): tf.Tensor3D {
  const file = path.join(split.dir, `${split.split}.safetensors`);
  if (!fs.existsSync(file)) throw new Error(`dataset array ${file} does not exist`);
  const stored = SafetensorsFile.open(file);
  try {
    if (!stored.has(name)) throw new Error(`dataset array ${file} has no tensor "${name}"; it has ${stored.keys().join(", ")}`);
    const tensor = stored.tensor(name) as tf.Tensor3D;
    if (tensor.shape[0] !== split.records.length) {
      tensor.dispose();
      throw new Error(`dataset array ${file}: ${name} has ${tensor.shape[0]} rows but ${split.split}.jsonl has ${split.records.length} records`);
    }
    return tensor;
  } finally {
    stored.close();
  }
}

/** A batch of a split: its records and their tensors (dispose `inputs` when done). */
export interface Batch<R = any> {
  readonly records: R[];
  readonly inputs: tf.Tensor;
}

/** Streams `[B, 3, S, S]` image batches of a split with an image field (scenes, medical, code, sentiment). */
export async function* imageBatches<R extends { image: string }>(split: DatasetSplit<R>, batchSize: number, args: BatchOrderArgs & { normalization?: PixelNormalization } = {}): AsyncGenerator<Batch<R>> {
  for (const records of recordBatches(split.records, batchSize, args)) {
    yield { records, inputs: await imageTensor(records.map((r) => path.join(split.dir, r.image)), args.normalization) };
  }
}

/** Streams log-mel batches `[B, 80, 100]` of a split with an audio field (audio, videos). */
export async function* audioBatches<R extends { audio: string }>(split: DatasetSplit<R>, batchSize: number, args: BatchOrderArgs = {}): AsyncGenerator<Batch<R>> {
  for (const records of recordBatches(split.records, batchSize, args)) {
    yield { records, inputs: logMelTensor(records.map((r) => path.join(split.dir, r.audio))) };
  }
}

/** Streams frame stacks `[B, F, 3, S, S]` of the videos set. */
export async function* videoBatches<R extends { video: string; frames: number }>(split: DatasetSplit<R>, batchSize: number, args: BatchOrderArgs & { normalization?: PixelNormalization } = {}): AsyncGenerator<Batch<R>> {
  for (const records of recordBatches(split.records, batchSize, args)) {
    yield { records, inputs: await videoTensor(records.map((r) => path.join(split.dir, r.video)), records[0].frames, args.normalization) };
  }
}

/** Streams sensor windows `[B, T, 6]` (set "sensors") or point clouds `[B, P, 6]` (set "points"). Nothing is held as a tensor between batches. */
export async function* arrayBatches<R extends { index: number }>(split: DatasetSplit<R>, batchSize: number, args: BatchOrderArgs = {}): AsyncGenerator<Batch<R>> {
  const stored = storedArray(split, split.set === "points" ? "points" : "windows");
  const shape = stored.shape;
  const values = (await stored.data()) as Float32Array;
  stored.dispose();
  const rowSize = shape[1] * shape[2];
  for (const records of recordBatches(split.records, batchSize, args)) {
    const out = new Float32Array(records.length * rowSize);
    records.forEach((r, k) => {
      if (!(Number.isInteger(r.index) && r.index >= 0 && r.index < shape[0])) throw new Error(`${split.set}/${split.split}.jsonl: record ${JSON.stringify((r as any).id)} has index ${r.index}, outside 0…${shape[0] - 1}`);
      out.set(values.subarray(r.index * rowSize, (r.index + 1) * rowSize), k * rowSize);
    });
    yield { records, inputs: tf.tensor3d(out, [records.length, shape[1], shape[2]]) };
  }
}
