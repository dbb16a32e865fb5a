/**
 * Loaders: shapes, value ranges and order of the batches for every modality;
 * bad or missing files named in the error; no tensor leaks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  openSplit,
  storedArray,
  imageBatches,
  audioBatches,
  videoBatches,
  arrayBatches,
  recordBatches,
  lengthGroupedOrder,
  imageTensor,
  logMelTensor,
  readClip,
} from "../src/data/loaders";
import { CLIP_MEAN, CLIP_STD } from "../src/preprocess/clip_image";
import { readJsonlFile } from "../src/data/world";
import { encodeWav } from "../src/io/wav";
import { COLORS } from "../src/data/vocabulary";
import { scratchFolders } from "./helpers/scratch";
import { Random } from "../src/util/random";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const WORLD = path.join(__dirname, "..", "data", "world");

async function minMax(t: tf.Tensor): Promise<[number, number]> {
  const [low, high] = [t.min(), t.max()];
  const [lo, hi] = await Promise.all([low.data(), high.data()]);
  tf.dispose([low, high]);
  return [lo[0], hi[0]];
}

describe("loaders", () => {
  it("images: [B, 3, 64, 64] CLIP-normalised, in file order without a seed", async () => {
    const before = tf.memory().numTensors;
    const split = openSplit(WORLD, "scenes", "val");
    const seen: string[] = [];
    for await (const batch of imageBatches(split, 128)) {
      expect(batch.inputs.shape).toEqual([batch.records.length, 3, 64, 64]);
      const [lo, hi] = await minMax(batch.inputs);
      expect(lo).toBeGreaterThanOrEqual(-CLIP_MEAN[0] / CLIP_STD[0] - 1e-4);
      expect(hi).toBeLessThanOrEqual((1 - CLIP_MEAN[2]) / CLIP_STD[2] + 1e-4);
      expect(hi).toBeGreaterThan(1.5); // white backgrounds
      seen.push(...batch.records.map((r) => r.id));
      batch.inputs.dispose();
    }
    expect(seen).toEqual(split.records.map((r) => r.id));
    const unit = await imageTensor([path.join(WORLD, "scenes", split.records[0].image)], "unit");
    expect(await minMax(unit)).toEqual([expect.any(Number), 1]);
    unit.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("shuffles the same way for the same seed and epoch, differently for another epoch", () => {
    const items = Array.from({ length: 50 }, (_, k) => k);
    const a = [...recordBatches(items, 8, { seed: 3 })].flat();
    expect([...recordBatches(items, 8, { seed: 3 })].flat()).toEqual(a);
    expect([...recordBatches(items, 8, { seed: 3, epoch: 1 })].flat()).not.toEqual(a);
    expect(a.slice().sort((x, y) => x - y)).toEqual(items);
    expect([...recordBatches(items, 8, { dropLast: true })].length).toBe(6);
    expect(() => [...recordBatches(items, 0)]).toThrow(/batchSize must be a positive integer, got 0/);
    // The order is the shuffle of the records themselves (what every committed checkpoint was trained with).
    expect(a).toEqual(new Random(3).shuffle(items));
  });

  it("groups batches by length as transformers' group_by_length: megabatches of the shuffled order, longest first", () => {
    const random = new Random(11);
    const lengths = Array.from({ length: 1000 }, () => (random.next() < 0.6 ? random.int(180, 257) : random.int(100, 151)));
    const records = lengths.map((length, id) => ({ id, length }));
    const batches = [...recordBatches(records, 16, { seed: 4, lengths, dropLast: true })];
    const shuffled = [...recordBatches(records, 16, { seed: 4, dropLast: true })];
    const indices = (n: number) => Array.from({ length: n }, (_, k) => k);
    // Each epoch still sees every record once (the last, smaller batch dropped), in a seeded order.
    const seen = batches.flat().map((r) => r.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(992);
    expect([...recordBatches(records, 16, { seed: 4, lengths, dropLast: true })].flat()).toEqual(batches.flat());
    // 1,000 records: megabatches of min(50, 1000 / 64) = 15 batches, each the shuffled order's next 240 sorted longest
    // first, cut into batches, and the batches dealt in a random order (not long to short within each megabatch).
    const order = new Random(4).shuffle(records.map((_, k) => k));
    const grouped = lengthGroupedOrder(order, lengths, 16);
    for (let start = 0; start + 240 <= 1000; start += 240) {
      const megabatch = grouped.slice(start, start + 240);
      expect(megabatch.slice().sort((x, y) => x - y)).toEqual(order.slice(start, start + 240).sort((x, y) => x - y));
      for (let k = 1; k < megabatch.length; k++) expect(lengths[megabatch[k]]).toBeLessThanOrEqual(lengths[megabatch[k - 1]]);
    }
    const key = (batch: readonly number[]) => batch.join(",");
    const expected = Array.from({ length: 62 }, (_, k) => key(grouped.slice(16 * k, 16 * k + 16)));
    const dealt = batches.map((batch) => key(batch.map((r) => r.id)));
    expect(dealt.slice().sort()).toEqual(expected.slice().sort());
    expect(dealt).not.toEqual(expected);
    const longest = batches.map((batch) => Math.max(...batch.map((r) => r.length)));
    const descendingRuns = longest.filter((value, k) => k > 0 && value <= longest[k - 1]).length;
    expect(descendingRuns, "no long-to-short sweep").toBeLessThan(50);
    // Without a seed: file order, grouped, batches in order.
    expect([...recordBatches(records, 16, { lengths })].flat().map((r) => r.id)).toEqual(
      lengthGroupedOrder(indices(1000), lengths, 16),
    );
    // What it is for: far less padding than random batches of a mixture of long and short conversations.
    const padded = (list: { length: number }[][]) =>
      list.reduce((sum, batch) => sum + 16 * Math.max(...batch.map((r) => r.length)), 0);
    const tokens = batches.flat().reduce((sum, r) => sum + r.length, 0);
    expect(tokens / padded(batches)).toBeGreaterThan(0.95);
    expect(tokens / padded(shuffled)).toBeLessThan(0.8);
    expect(() => [...recordBatches(records, 16, { seed: 4, lengths: lengths.slice(1) })]).toThrow(
      /999 lengths for 1000 records; expected one per record/,
    );
    expect(() => lengthGroupedOrder(order, lengths, 16, 0)).toThrow(/megabatchBatches must be a positive integer, got 0/);
  });

  it("audio: Whisper log-mel [B, 80, 100] in Whisper's range", async () => {
    const split = openSplit(WORLD, "audio", "val");
    const { value } = await audioBatches(split, 8).next();
    const batch = value!;
    expect(batch.inputs.shape).toEqual([8, 80, 100]);
    for (let k = 0; k < 8; k++) {
      const clip = batch.inputs.slice([k, 0, 0], [1, 80, 100]);
      const [lo, hi] = await minMax(clip);
      clip.dispose();
      // Whisper clamps at 8 decades below each clip's peak, then (x + 4) / 4: every clip spans at most 2.
      expect(hi - lo).toBeLessThanOrEqual(2 + 1e-5);
      expect(hi - lo).toBeGreaterThan(1.5);
      expect(hi).toBeLessThan(2.5);
    }
    batch.inputs.dispose();
  });

  it("videos: [B, F, 3, 64, 64] frames cut from the filmstrip in order", async () => {
    const split = openSplit(WORLD, "videos", "val");
    let checked = 0;
    for await (const batch of videoBatches(split, 8, { normalization: "raw" })) {
      expect(batch.inputs.shape).toEqual([batch.records.length, 12, 3, 64, 64]);
      for (const [k, record] of batch.records.entries()) {
        // Frame 0 of a one-object clip shows the object's color at its starting center (raw 0…255, NCHW per frame).
        for (const track of record.tracks) {
          if (track.appear_at !== 0 || record.tracks.length > 1) continue;
          const [x, y] = [Math.round(track.object.x), Math.round(track.object.y)];
          const pixel = batch.inputs.slice([k, 0, 0, y, x], [1, 1, 3, 1, 1]);
          const values = Array.from(await pixel.data());
          pixel.dispose();
          const expected = [1, 3, 5].map((i) => parseInt(COLORS[track.object.color as keyof typeof COLORS].slice(i, i + 2), 16));
          expect(
            values.map((v, c) => Math.abs(v - expected[c])).every((d) => d <= 2),
            `${record.id}: rgb(${values}) at (${x}, ${y})`,
          ).toBe(true);
          checked++;
        }
      }
      batch.inputs.dispose();
    }
    expect(checked).toBeGreaterThan(5);
  });

  it("sensors [B, 200, 6] and points [B, 256, 6] follow the records' indices", async () => {
    const before = tf.memory().numTensors;
    const sensors = openSplit(WORLD, "sensors", "val");
    let rows = 0;
    for await (const batch of arrayBatches(sensors, 32, { seed: 1 })) {
      expect(batch.inputs.shape).toEqual([batch.records.length, 200, 6]);
      rows += batch.records.length;
      batch.inputs.dispose();
    }
    expect(rows).toBe(sensors.records.length);
    // A shuffled batch's rows are the stored rows of its records' indices.
    const stored = storedArray(sensors, "windows");
    const { value: shuffled } = await arrayBatches(sensors, 4, { seed: 5 }).next();
    for (const [k, record] of shuffled!.records.entries()) {
      const [mine, theirs] = [shuffled!.inputs.slice([k, 0, 0], [1, 200, 6]), stored.slice([record.index, 0, 0], [1, 200, 6])];
      expect(Array.from(await mine.data())).toEqual(Array.from(await theirs.data()));
      tf.dispose([mine, theirs]);
    }
    tf.dispose([stored, shuffled!.inputs]);
    const points = openSplit(WORLD, "points", "val");
    const { value } = await arrayBatches(points, 4).next();
    expect(value!.inputs.shape).toEqual([4, 256, 6]);
    value!.inputs.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("bad input is named", () => {
  let dir: string;
  beforeAll(() => {
    dir = scratch("loaders-");
  });

  it("a missing world, set, annotation file or image", async () => {
    expect(() => openSplit(path.join(dir, "nowhere"), "scenes", "train")).toThrow(/no dataset folder .*nowhere.*npm run data/);
    fs.mkdirSync(path.join(dir, "scenes"), { recursive: true });
    expect(() => openSplit(dir, "scenes", "train")).toThrow(/missing annotation file .*train.jsonl/);
    expect(() => openSplit(dir, "scenes", "dev" as any)).toThrow(/split must be one of train, val, test, got "dev"/);
    await expect(imageTensor([path.join(dir, "gone.png")])).rejects.toThrow(/image: .*gone.png does not exist/);
  });

  it("a corrupt image, a corrupt JSONL line, a WAV at the wrong rate", async () => {
    fs.writeFileSync(path.join(dir, "bad.png"), Buffer.from("not a png at all"));
    await expect(imageTensor([path.join(dir, "bad.png")])).rejects.toThrow(/image: cannot decode .*bad.png as an image/);
    fs.writeFileSync(path.join(dir, "scenes", "val.jsonl"), '{"id": "a"}\n{"id": \n');
    expect(() => openSplit(dir, "scenes", "val")).toThrow(/val.jsonl, line 2: not valid JSON/);
    fs.writeFileSync(path.join(dir, "slow.wav"), encodeWav(new Float32Array(8000), 8000));
    expect(() => readClip(path.join(dir, "slow.wav"))).toThrow(/slow.wav is at 8000 Hz; expected 16000 Hz/);
    fs.writeFileSync(path.join(dir, "broken.wav"), Buffer.from("RIFF1234WAVEjunkjunkjunkjunkjunkjunkjunkjunkjunkjunk"));
    expect(() => logMelTensor([path.join(dir, "broken.wav")])).toThrow(/broken.wav.*corrupt WAV/);
  });

  it("a mis-sized image in a batch", async () => {
    const first = readJsonlFile(path.join(WORLD, "scenes", "val.jsonl"))[0];
    const strip = readJsonlFile(path.join(WORLD, "stories", "val.jsonl"))[0];
    await expect(
      imageTensor([path.join(WORLD, "scenes", first.image), path.join(WORLD, "stories", strip.image)]),
    ).rejects.toThrow(/is 320×64; expected 64×64/);
  });
});
