/**
 * The synthetic world: generation is deterministic and reproduces the
 * committed data/world byte for byte; annotations agree with the media they
 * describe (pixels at object centers, pitches of sounds, program renders,
 * sensor physics, point-cloud surfaces); every record fits its schema; VQA
 * soft accuracy follows the VQAv2 rule.
 */
import { describe, expect, it } from "vitest";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Ajv from "ajv";
import { generateWorld, GENERATORS, readJsonlFile } from "../src/data/world";
import { SPLITS } from "../src/data/dataset_writer";
import { decodeRgb } from "../src/preprocess/clip_image";
import { parseProgram, sceneToProgram, scoreProgram } from "../src/data/drawing_language";
import { sceneSvg, svgToRgb, sampleScene } from "../src/data/scene";
import { COLORS, COLOR_NAMES, SHAPE_NAMES } from "../src/data/vocabulary";
import { COLOR_PITCH, SAMPLE_RATE, soundEventClip } from "../src/data/audio";
import { vqaAccuracy, normalizeAnswer } from "../src/data/vqa";
import { combineSentiment } from "../src/data/sentiment";
import { sampleSensorWindow, ACTIVITIES } from "../src/data/sensors";
import { readWav } from "../src/io/wav";
import { SafetensorsFile } from "../src/io/safetensors";
import { Random } from "../src/util/random";
import { DIRECTIONS, sampleVideo } from "../src/data/video";
import { ESPEAK_NG, missingSystem, skipWithout } from "./helpers/system";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const WORLD = path.join(__dirname, "..", "data", "world");

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.push(path.relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}

const sha = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

function hexToRgb(hex: string): number[] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

describe("world generation", () => {
  // The world's spoken words are made with espeak-ng: without it they cannot be regenerated.
  it.skipIf(skipWithout("world regeneration test", ESPEAK_NG))(
    "regenerates the committed world byte for byte (same seed, same bytes)",
    async () => {
      expect(missingSystem("world regeneration test", ESPEAK_NG), "required (MLLM_REQUIRE_SYSTEM=1) but missing").toEqual([]);
      const out = scratch("world-");
      try {
        await generateWorld({ out, size: "small", seed: 0, log: () => {} });
        const committed = listFiles(WORLD);
        const fresh = listFiles(out);
        expect(fresh).toEqual(committed);
        const differing = committed.filter((file) => sha(path.join(WORLD, file)) !== sha(path.join(out, file)));
        expect(differing, `files that differ from data/world: ${differing.slice(0, 10).join(", ")}`).toEqual([]);
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    },
    300_000,
  );

  it("a different seed gives a different world", async () => {
    const out = scratch("world-");
    try {
      await generateWorld({ out, seed: 1, sets: ["code"], log: () => {} });
      expect(fs.readFileSync(path.join(out, "code", "train.jsonl"), "utf8")).not.toEqual(
        fs.readFileSync(path.join(WORLD, "code", "train.jsonl"), "utf8"),
      );
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it("rejects an unknown set or size by name", async () => {
    await expect(generateWorld({ out: os.tmpdir(), sets: ["smells"], log: () => {} })).rejects.toThrow(/unknown set "smells"/);
    await expect(generateWorld({ out: os.tmpdir(), size: "huge" as any, log: () => {} })).rejects.toThrow(
      /size must be "small" or "large", got "huge"/,
    );
  });
});

describe("every record fits its set's schema", () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  it.each([...Object.keys(GENERATORS), "text"])("%s", (set) => {
    const schema = JSON.parse(fs.readFileSync(path.join(WORLD, set, "schema.json"), "utf8"));
    const validate = ajv.compile(schema);
    const manifest = JSON.parse(fs.readFileSync(path.join(WORLD, "world.json"), "utf8"));
    for (const split of SPLITS) {
      const records = readJsonlFile(path.join(WORLD, set, `${split}.jsonl`));
      expect(records.length).toBe(manifest.sets[set][split]);
      for (const record of records)
        expect(validate(record), `${set}/${split} ${record.id}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
    expect(fs.readFileSync(path.join(WORLD, set, "CARD.md"), "utf8")).toMatch(/Synthetic data/);
  });

  it("the schema files' enums are the vocabularies the generators draw from", () => {
    const scenes = GENERATORS.scenes.schema as any;
    expect(scenes.properties.objects.items.properties.shape.enum).toEqual([...SHAPE_NAMES]);
    expect(scenes.properties.objects.items.properties.color.enum).toEqual([...COLOR_NAMES]);
    expect((GENERATORS.stories.schema as any).properties.frames.items.properties.objects.items).toEqual(
      scenes.properties.objects.items,
    );
    expect((GENERATORS.sensors.schema as any).properties.activity.enum).toEqual([...ACTIVITIES]);
    expect((GENERATORS.points.schema as any).properties.color.enum).toEqual([...COLOR_NAMES]);
  });
});

describe("annotations match their media", () => {
  it("scenes: the pixel at every object's center has the object's color", async () => {
    const records = readJsonlFile(path.join(WORLD, "scenes", "test.jsonl"));
    let checked = 0;
    for (const record of records.slice(0, 120)) {
      const image = await decodeRgb(path.join(WORLD, "scenes", record.image));
      for (const o of record.objects) {
        const at = (Math.round(o.y) * image.width + Math.round(o.x)) * 3;
        const pixel = [image.data[at], image.data[at + 1], image.data[at + 2]];
        const expected = hexToRgb(COLORS[o.color as keyof typeof COLORS]);
        expect(
          pixel.map((v, c) => Math.abs(v - expected[c])).every((d) => d <= 2),
          `${record.id}: ${o.color} ${o.shape} at (${o.x}, ${o.y}) shows rgb(${pixel})`,
        ).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(200);
  });

  it("scenes: VQA answers follow from the objects", () => {
    const records = readJsonlFile(path.join(WORLD, "scenes", "val.jsonl"));
    let checked = 0;
    for (const record of records) {
      for (const q of record.vqa) {
        if (q.question === "how many objects are there?") expect(q.answer).toBe(String(record.objects.length));
        const color = /^what color is the (\w+)\?$/.exec(q.question);
        if (color) expect(q.answer).toBe(record.objects.find((o: any) => o.shape === color[1]).color);
        const shape = /^what shape is the (\w+) object\?$/.exec(q.question);
        if (shape) expect(q.answer).toBe(record.objects.find((o: any) => o.color === shape[1]).shape);
        const exist = /^is there an? (\w+) (\w+)\?$/.exec(q.question);
        if (exist)
          expect(q.answer).toBe(record.objects.some((o: any) => o.color === exist[1] && o.shape === exist[2]) ? "yes" : "no");
        expect(q.answers).toHaveLength(10);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it("stories and videos: objects are where the frames say", async () => {
    for (const [set, field] of [
      ["stories", "image"],
      ["videos", "video"],
    ] as const) {
      const records = readJsonlFile(path.join(WORLD, set, "test.jsonl")).slice(0, 15);
      for (const record of records) {
        const strip = await decodeRgb(path.join(WORLD, set, record[field]));
        const frames =
          set === "stories"
            ? record.frames.map((f: any) => f.objects)
            : [record.tracks.filter((t: any) => t.appear_at === 0).map((t: any) => t.object)];
        expect(strip.width).toBe(64 * (set === "stories" ? 5 : record.frames));
        frames.forEach((objects: any[], f: number) => {
          for (const o of objects) {
            const at = (Math.round(o.y) * strip.width + f * 64 + Math.round(o.x)) * 3;
            const expected = hexToRgb(COLORS[o.color as keyof typeof COLORS]);
            const pixel = [strip.data[at], strip.data[at + 1], strip.data[at + 2]];
            expect(
              pixel.map((v, c) => Math.abs(v - expected[c])).every((d) => d <= 2),
              `${set} ${record.id} frame ${f}: ${o.color} ${o.shape} shows rgb(${pixel})`,
            ).toBe(true);
          }
        });
      }
    }
  });

  it("videos: an object's direction is the way it moves when it is first seen, even after a bounce before that", () => {
    const random = new Random(91);
    let bouncedBeforeSeen = 0;
    let checked = 0;
    for (let clip = 0; clip < 400; clip++) {
      for (const track of sampleVideo(random, 12).tracks) {
        const first = track.appearAt;
        if (first > 0 && track.bounces.some((b) => b <= first)) bouncedBeforeSeen++;
        // A bounce between the first two visible frames folds the step; the next frame pair shows the motion then.
        if (track.bounces.includes(first + 1) || first + 1 >= track.disappearAt) continue;
        const [dx, dy] = [0, 1].map((axis) => track.positions[first + 1][axis] - track.positions[first][axis]);
        const [ux, uy] = DIRECTIONS[track.direction];
        expect(
          Math.sign(dx) === ux && Math.sign(dy) === uy,
          `clip ${clip}: ${track.direction} but it moves by (${dx}, ${dy}) from frame ${first}`,
        ).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(400);
    const why = "objects that bounce before they appear (the case the label must follow)";
    expect(bouncedBeforeSeen, why).toBeGreaterThan(10);
  });

  it("code: every answer program renders exactly its image, and scoring tells right from wrong", async () => {
    const records = readJsonlFile(path.join(WORLD, "code", "test.jsonl"));
    for (const record of records) {
      const [image, drawn] = await Promise.all([
        decodeRgb(path.join(WORLD, "code", record.image)),
        svgToRgb(sceneSvg(parseProgram(record.program))),
      ]);
      expect(Buffer.from(drawn.data).equals(Buffer.from(image.data)), `${record.id}: program render differs from its image`).toBe(
        true,
      );
      expect(record.conversations[1].value).toBe(record.program);
    }
    const reference = records[0].program;
    expect(await scoreProgram(reference, reference)).toMatchObject({ runs: true, exactMatch: true, pixelAgreement: 1 });
    const moved = reference.replace(
      /at (\d+) (\d+)/,
      (_: string, x: string, y: string) => `at ${Math.min(64, Number(x) + 9)} ${y}`,
    );
    const score = await scoreProgram(moved, reference);
    expect(score.exactMatch).toBe(false);
    expect(score.pixelAgreement).toBeLessThan(1);
    expect(await scoreProgram("circle red huge at 1 2", reference)).toMatchObject({
      runs: false,
      pixelAgreement: 0,
      error: expect.stringMatching(/line 1 .*unknown size "huge"/),
    });
  });

  it("code: program ↔ scene round trip", () => {
    const random = new Random(3);
    for (let k = 0; k < 50; k++) {
      const scene = sampleScene(random);
      expect(parseProgram(sceneToProgram(scene))).toEqual(scene);
    }
  });

  it("audio: an event clip's strongest pitch is its color's", () => {
    const records = readJsonlFile(path.join(WORLD, "audio", "test.jsonl"))
      .filter((r) => r.kind === "event")
      .slice(0, 40);
    expect(records.length).toBeGreaterThan(20);
    for (const record of records) {
      const wave = readWav(path.join(WORLD, "audio", record.audio));
      expect(wave.sampleRate).toBe(SAMPLE_RATE);
      const samples = wave.channels[0];
      expect(samples.length).toBe(SAMPLE_RATE);
      // Largest spectral power in ±3% bands around each color's pitch (DFT at 1 Hz steps).
      const bandPower = (f: number) => {
        let best = 0;
        for (let hz = Math.floor(f * 0.97); hz <= Math.ceil(f * 1.03); hz++) {
          let re = 0;
          let im = 0;
          for (let n = 0; n < samples.length; n++) {
            const angle = (2 * Math.PI * hz * n) / SAMPLE_RATE;
            re += samples[n] * Math.cos(angle);
            im -= samples[n] * Math.sin(angle);
          }
          best = Math.max(best, re * re + im * im);
        }
        return best;
      };
      const powers = Object.entries(COLOR_PITCH).map(([color, f]) => [color, bandPower(f)] as const);
      const loudest = powers.reduce((a, b) => (b[1] > a[1] ? b : a));
      expect(loudest[0], `${record.id} (${record.label})`).toBe(record.color);
    }
  });

  it("medical: bright lesions are brighter and dark ones darker than the organ around them", async () => {
    const records = readJsonlFile(path.join(WORLD, "medical", "test.jsonl"));
    let checked = 0;
    for (const record of records) {
      const image = await decodeRgb(path.join(WORLD, "medical", record.image));
      const gray = (x: number, y: number) => image.data[(Math.round(y) * image.width + Math.round(x)) * 3];
      for (const l of record.lesions) {
        // The organ's typical brightness: the median of the pixels brighter than the background.
        const organ = Array.from(image.data.filter((_, i) => i % 3 === 0 && image.data[i] > 80)).sort((a, b) => a - b);
        const typical = organ[Math.floor(organ.length / 2)];
        const center =
          [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => gray(l.x + dx, l.y + dy))).reduce((a, b) => a + b, 0) / 9; // 3×3 mean: less pixel noise
        if (l.appearance === "bright") expect(center - typical, record.id).toBeGreaterThan(25);
        else expect(typical - center, record.id).toBeGreaterThan(25);
        checked++;
      }
      expect(record.findings.startsWith(["no", "one", "two", "three"][record.lesions.length])).toBe(true);
    }
    expect(checked).toBeGreaterThan(30);
  });

  it("sensors: gravity, stillness and vigour as the activities imply", () => {
    const file = SafetensorsFile.open(path.join(WORLD, "sensors", "test.safetensors"));
    const windows = file.tensor("windows");
    const values = windows.dataSync();
    const records = readJsonlFile(path.join(WORLD, "sensors", "test.jsonl"));
    const spread: Record<string, number[]> = {};
    records.forEach((r, k) => {
      const norms: number[] = [];
      for (let t = 0; t < 200; t++) {
        const o = (k * 200 + t) * 6;
        norms.push(Math.hypot(values[o], values[o + 1], values[o + 2]));
      }
      const meanNorm = norms.reduce((a, b) => a + b, 0) / norms.length;
      const std = Math.sqrt(norms.reduce((a, b) => a + (b - meanNorm) ** 2, 0) / norms.length);
      (spread[r.activity] ??= []).push(std);
      if (r.activity === "sitting") expect(Math.abs(meanNorm - 9.81), r.id).toBeLessThan(0.3);
    });
    windows.dispose();
    file.close();
    const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    expect(median(spread.sitting)).toBeLessThan(median(spread.cycling));
    expect(median(spread.walking)).toBeLessThan(median(spread.running));
    expect(median(spread.sitting)).toBeLessThan(0.2);
    expect(Object.keys(spread).sort()).toEqual([...ACTIVITIES].sort());
    expect(() => sampleSensorWindow(new Random(1), "swimming" as any)).toThrow(/unknown activity "swimming"/);
  });

  it("points: spheres lie on their sphere and cubes in their cube", () => {
    const file = SafetensorsFile.open(path.join(WORLD, "points", "test.safetensors"));
    const points = file.tensor("points");
    const values = points.dataSync();
    const records = readJsonlFile(path.join(WORLD, "points", "test.jsonl"));
    records.forEach((r, k) => {
      for (let p = 0; p < 256; p++) {
        const o = (k * 256 + p) * 6;
        const [x, y, z] = [values[o], values[o + 1], values[o + 2]];
        if (r.solid === "sphere") expect(Math.abs(Math.hypot(x, y, z) / r.scale - 1)).toBeLessThan(0.05);
        if (r.solid === "cube") expect(Math.max(Math.abs(y)) / r.scale).toBeLessThan(1.05);
        expect(Array.from(values.subarray(o + 3, o + 6)).map((v) => Math.round(v * 255))).toEqual(
          hexToRgb(COLORS[r.color as keyof typeof COLORS]),
        );
      }
    });
    points.dispose();
    file.close();
  });

  it("sentiment: every label follows the rule from face and text", () => {
    for (const r of readJsonlFile(path.join(WORLD, "sentiment", "train.jsonl")))
      expect(r.label, r.id).toBe(combineSentiment(r.face, r.text_sentiment));
    expect(combineSentiment("positive", "negative")).toBe("neutral");
    expect(combineSentiment("neutral", "negative")).toBe("negative");
  });
});

describe("VQA soft accuracy (VQAv2's rule)", () => {
  it("is 1 with three or more agreeing annotators over every leave-one-out subset, 0.6 with two, 0 with none", () => {
    const answers = ["red", "red", "orange", "red", "red", "red", "red", "red", "red", "red"];
    expect(vqaAccuracy("red", answers)).toBe(1);
    expect(vqaAccuracy("orange", answers)).toBeCloseTo(0.3, 10); // 1 match: 9 subsets × 1/3 + 1 subset × 0 → 0.3
    expect(vqaAccuracy("orange", ["orange", "orange", ...Array(8).fill("red")])).toBeCloseTo(0.6, 10); // 2 left in: 8 × 2/3; 1 left in: 2 × 1/3
    expect(vqaAccuracy("blue", answers)).toBe(0);
  });

  it("normalises case, punctuation, articles and number words", () => {
    expect(normalizeAnswer("The Red.")).toBe("red");
    expect(normalizeAnswer("Two")).toBe("2");
    expect(vqaAccuracy("three", Array(10).fill("3"))).toBe(1);
    expect(() => vqaAccuracy("x", [])).toThrow(/no reference answers/);
  });
});

describe("audio synthesis", () => {
  it("is the same samples for the same seed and stays in [-1, 1]", () => {
    const a = soundEventClip(new Random(9), "blue", "star");
    const b = soundEventClip(new Random(9), "blue", "star");
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(a.every((v) => v >= -1 && v <= 1)).toBe(true);
    expect(soundEventClip(new Random(10), "blue", "star")).not.toEqual(a);
  });
});
