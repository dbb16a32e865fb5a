/**
 * The whole synthetic world: every dataset the labs use, generated
 * deterministically from one seed into `data/world/` (`--size small`, the
 * committed one) or `data/world-large/` (`--size large`, ten times larger).
 *
 * Sets: scenes (captions + VQA), stories, videos (with soundtracks), audio
 * (sound events and spoken words), sensors, points (3D), and the three
 * instruction-tuning sets medical, code and sentiment; plus `text/`, all the
 * world's text in the same splits, for the language model, and `tokenizer/`,
 * the world tokenizer trained on the train split's text.
 */
import * as fs from "fs";
import * as path from "path";
import { Random } from "../util/random";
import { SPLITS, type Split, type DatasetCard, type JsonSchema, cardMarkdown, splitSeed, toJsonl, writeFileAtomic } from "./dataset_writer";
import { sampleScene, renderScene, sceneSvg, filmstrip, svgToPng } from "./scene";
import { captionScene } from "./captions";
import { askQuestions } from "./vqa";
import { sampleStory } from "./story";
import { sampleVideo } from "./video";
import { SAMPLE_RATE, soundEventClip, speechSynthesizer, spokenWordClip, videoSoundtrack } from "./audio";
import { encodeWav } from "../io/wav";
import { ACTIVITIES, SENSOR_CHANNELS, SENSOR_RATE, sampleSensorWindow } from "./sensors";
import { samplePointCloud } from "./point_cloud";
import { sampleScan, scanInstructions, scanPng } from "./medical";
import { sceneToProgram } from "./drawing_language";
import { sampleSentiment } from "./sentiment";
import { CODE_INSTRUCTIONS, conversationFromPairs, sentimentInstruction } from "./llava_instructions";
import { COLOR_NAMES, SHAPE_NAMES } from "./vocabulary";
import { saveSafetensors } from "../io/safetensors";
import { trainWorldTokenizer } from "../tokenizer/tokenizer";
import { projectRoot } from "../util/project_root";

/** Scenes with 1, 2, 3, 4 objects in these proportions: single objects are common, so zero-shot color and shape tests have many. */
export const SCENE_COUNT_WEIGHTS = [0.4, 0.25, 0.2, 0.15] as const;

export type WorldSize = "small" | "large";

/** Records per split of each set at `--size small` (large is ×10). */
export const SMALL_COUNTS: Record<string, Record<Split, number>> = {
  scenes: { train: 3000, val: 300, test: 300 },
  stories: { train: 300, val: 50, test: 50 },
  videos: { train: 160, val: 32, test: 32 },
  audio: { train: 200, val: 40, test: 160 },
  sensors: { train: 500, val: 100, test: 100 },
  points: { train: 300, val: 50, test: 50 },
  medical: { train: 300, val: 50, test: 50 },
  code: { train: 300, val: 50, test: 50 },
  sentiment: { train: 300, val: 60, test: 60 },
};

export interface GenerateWorldArgs {
  /** Output folder. Default `data/world` (small) or `data/world-large` (large) under the project. */
  readonly out: string;
  /** Default "small". */
  readonly size?: WorldSize;
  /** Default 0. */
  readonly seed?: number;
  /** Only these sets (default all). `text` needs the sets it gathers from. */
  readonly sets?: readonly string[];
  /** Progress lines. Default console.log. */
  readonly log?: (line: string) => void;
}

interface SetContext {
  readonly dir: string;
  readonly split: Split;
  readonly count: number;
  readonly random: Random;
}

/** Per set: how one split is made (returns its records), its schema and card text. */
interface SetGenerator {
  readonly title: string;
  readonly description: string;
  readonly fields: Record<string, string>;
  readonly schema: JsonSchema;
  generate(context: SetContext): Promise<object[]>;
  /** Text of a record for `text/` (the language corpus). */
  texts(record: any): string[];
}

const schemas = new Map<string, JsonSchema>();

/**
 * A set's JSON Schema (draft-07) of one record, from `src/data/schemas/<set>.json`
 * (read at run time from the project, as the runner reads nbformat's schema:
 * tslab compiles the library without `resolveJsonModule`). Written to
 * `<set>/schema.json` with the set's title first.
 */
function recordSchema(set: string): JsonSchema {
  let schema = schemas.get(set);
  if (!schema) {
    const file = path.join(projectRoot(), "src", "data", "schemas", `${set}.json`);
    try {
      schema = JSON.parse(fs.readFileSync(file, "utf8")) as JsonSchema;
    } catch (error) {
      throw new Error(`world: cannot read the record schema ${file}: ${(error as Error).message}`);
    }
    schemas.set(set, schema);
  }
  return schema;
}

const id = (split: Split, k: number) => `${split}-${String(k).padStart(6, "0")}`;

export const GENERATORS: Record<string, SetGenerator> = {
  scenes: {
    title: "Scenes: images, captions and VQA",
    description: "64×64 RGB images of 1–4 non-overlapping coloured shapes (40% one object, then 25%, 20%, 15%) (6 colors × 5 shapes × 2 sizes) on a light background, with three captions in varied phrasing and three VQAv2-style questions (color, shape, count, existence, spatial relation), each with ten annotators' answers so that VQA soft accuracy applies. Used to pretrain the vision backbone (CLIP) and in the BLIP-2 and LLaVA labs.",
    fields: { id: "record id", image: "PNG path relative to this folder", objects: "the objects: shape, color, size (small = radius 7, large = 11 px), center x, y in pixels", captions: "three captions", vqa: "questions with `answer` and ten `answers`" },
    get schema() {
      return recordSchema("scenes");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const scene = sampleScene(random, { countWeights: SCENE_COUNT_WEIGHTS });
        const image = `${split}/${String(k).padStart(6, "0")}.png`;
        writeFileAtomic(path.join(dir, image), await renderScene(scene));
        const captions = [0, 1, 2].map(() => captionScene(scene, random));
        out.push({ id: id(split, k), image, background: scene.background, objects: scene.objects, captions, vqa: askQuestions(scene, random, 3) });
      }
      return out;
    },
    texts: (r) => [...r.captions, ...r.vqa.map((q: any) => `question: ${q.question} answer: ${q.answer}`)],
  },
  stories: {
    title: "Visual stories",
    description: "Five-frame stories: a scene changes step by step (objects arrive, move, leave, meet), one sentence per frame. Frames are stored as one 320×64 filmstrip PNG. For the visual storytelling lab.",
    fields: { id: "record id", image: "filmstrip PNG, frame k at x = 64k", frames: "per frame: event (start/arrive/move/leave/meet), sentence, objects" },
    get schema() {
      return recordSchema("stories");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const story = sampleStory(random);
        const image = `${split}/${String(k).padStart(6, "0")}.png`;
        writeFileAtomic(path.join(dir, image), await filmstrip(story.frames.map((f) => sceneSvg(f.scene)), 64));
        out.push({ id: id(split, k), image, background: story.frames[0].scene.background, frames: story.frames.map((f) => ({ event: f.event, sentence: f.sentence, objects: f.scene.objects })) });
      }
      return out;
    },
    texts: (r) => [r.frames.map((f: any) => f.sentence).join(" ")],
  },
  videos: {
    title: "Videos with soundtracks",
    description: "12-frame clips (64×64, one second at 12 frames per second) of one or two objects moving left, right, up or down, slowly or quickly, bouncing off the walls; the second object may appear or disappear part way. Each clip has a caption, questions about what happens over time (ten answers each), and a 1 s 16 kHz soundtrack in which each visible object hums with its own sound and rings when it bounces. For the VideoLLaMA lab.",
    fields: { id: "record id", video: "filmstrip PNG, frame k at x = 64k", audio: "WAV soundtrack, 16 kHz mono 16-bit, 1 s", frames: "frame count", tracks: "per object: object, direction (the way it moves in its first visible frame), speed, appear_at, disappear_at, bounces (frame indices)", caption: "what happens", vqa: "questions with `answer` and ten `answers`" },
    get schema() {
      return recordSchema("videos");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const clip = sampleVideo(random, 12);
        const stem = `${split}/${String(k).padStart(6, "0")}`;
        writeFileAtomic(path.join(dir, `${stem}.png`), await filmstrip(clip.frames.map(sceneSvg), 64));
        writeFileAtomic(path.join(dir, `${stem}.wav`), encodeWav(videoSoundtrack(clip, random), SAMPLE_RATE));
        out.push({
          id: id(split, k), video: `${stem}.png`, audio: `${stem}.wav`, frames: clip.frames.length,
          tracks: clip.tracks.map((t) => ({ object: t.object, direction: t.direction, speed: t.speed, appear_at: t.appearAt, disappear_at: t.disappearAt, bounces: t.bounces })),
          caption: clip.caption, vqa: clip.questions,
        });
      }
      return out;
    },
    texts: (r) => [r.caption, ...r.vqa.map((q: any) => `question: ${q.question} answer: ${q.answer}`)],
  },
  audio: {
    title: "Audio: sound events and spoken words",
    description: "1 s clips at 16 kHz. Sound events: every object has a sound, its color setting the pitch (C-major scale from C4: red 262 Hz … purple 523 Hz) and its shape the timbre (circle sine, square square-wave, triangle triangle-wave, diamond FM warble, star bell); random onset, length, loudness, slight detune and noise. Spoken words: the color and shape names spoken by espeak-ng with random speed, pitch and voice (when espeak-ng is installed at generation time). For the audio encoder and the audio branch of the VideoLLaMA lab. The test split is the largest: the audio backbone pretrains on clips it synthesises itself (`npm run pretrain -- audio`), and its accuracy is measured here.",
    fields: { id: "record id", audio: "WAV, 16 kHz mono 16-bit, 1 s", kind: "event or speech", label: "class: '<color> <shape>' for events, the word for speech", color: "event's color (events)", shape: "event's shape (events)", word: "spoken word (speech)", caption: "a sentence about the sound" },
    get schema() {
      return recordSchema("audio");
    },
    async generate({ dir, split, count, random }) {
      const speech = speechSynthesizer() !== undefined;
      const words = [...COLOR_NAMES, ...SHAPE_NAMES];
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const file = `${split}/${String(k).padStart(6, "0")}.wav`;
        if (speech && random.next() < 0.3) {
          const word = words[random.int(0, words.length)];
          writeFileAtomic(path.join(dir, file), encodeWav(spokenWordClip(random, word), SAMPLE_RATE));
          out.push({ id: id(split, k), audio: file, kind: "speech", label: word, word, caption: `someone says the word "${word}"` });
        } else {
          const color = COLOR_NAMES[random.int(0, COLOR_NAMES.length)];
          const shape = SHAPE_NAMES[random.int(0, SHAPE_NAMES.length)];
          writeFileAtomic(path.join(dir, file), encodeWav(soundEventClip(random, color, shape), SAMPLE_RATE));
          out.push({ id: id(split, k), audio: file, kind: "event", label: `${color} ${shape}`, color, shape, caption: `the sound of a ${color} ${shape}` });
        }
      }
      return out;
    },
    texts: (r) => [r.caption],
  },
  sensors: {
    title: "Inertial sensors: activities",
    description: `Windows of 4 s at ${SENSOR_RATE} Hz from a phone's 3-axis accelerometer (m/s², gravity included) and gyroscope (rad/s) for ${ACTIVITIES.join(", ")}: a gait or pedalling model at a random cadence and intensity, the phone at a random orientation, sensor bias and noise. The values are in \`<split>.safetensors\` (tensor \`windows\`, [N, 200, 6], channels ${SENSOR_CHANNELS.join(", ")}); record k of the JSONL is window k.`,
    fields: { id: "record id", index: "row of `windows` in <split>.safetensors", activity: "the activity", cadence: "steps (or pedal strokes) per second", intensity: "light, moderate or vigorous", caption: "a sentence about the activity" },
    get schema() {
      return recordSchema("sensors");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      const T = 4 * SENSOR_RATE;
      const all = new Float32Array(count * T * 6);
      for (let k = 0; k < count; k++) {
        const window = sampleSensorWindow(random, ACTIVITIES[k % ACTIVITIES.length]);
        all.set(window.values, k * T * 6);
        out.push({ id: id(split, k), index: k, activity: window.activity, cadence: window.cadence, intensity: window.intensity, caption: window.caption });
      }
      await saveTensorFile(path.join(dir, `${split}.safetensors`), "windows", all, [count, T, 6]);
      return out;
    },
    texts: (r) => [r.caption],
  },
  points: {
    title: "Point clouds of solids",
    description: "256-point coloured clouds of a sphere, cube, cylinder, cone or torus, randomly scaled and turned about the vertical axis, with a caption. Values in `<split>.safetensors` (tensor `points`, [N, 256, 6]: x, y, z with y up, then r, g, b in [0, 1]). For a later 3D lab.",
    fields: { id: "record id", index: "row of `points`", solid: "the solid", color: "its color", scale: "half extent", caption: "a sentence" },
    get schema() {
      return recordSchema("points");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      const all = new Float32Array(count * 256 * 6);
      for (let k = 0; k < count; k++) {
        const cloud = samplePointCloud(random, 256);
        all.set(cloud.points, k * 256 * 6);
        out.push({ id: id(split, k), index: k, solid: cloud.solid, color: cloud.color, scale: cloud.scale, caption: cloud.caption });
      }
      await saveTensorFile(path.join(dir, `${split}.safetensors`), "points", all, [count, 256, 6]);
      return out;
    },
    texts: (r) => [r.caption],
  },
  medical: {
    title: "Medical-style instructions (synthetic scans)",
    description: "Clearly synthetic, not medical data: 64×64 grayscale 'scans' of an oval organ with 0–3 lesions, each small or large, bright or dark, one per quadrant; instruction-tuning conversations ask for the findings, the count and a quadrant. For the domain-tuning part of the LoRA/QLoRA lab.",
    fields: { id: "record id", image: "grayscale PNG", lesions: "x, y, radius (px), size, appearance, location", findings: "the report sentence", conversations: "LLaVA-style turns (human/gpt); the first human turn starts with <image>", synthetic: "always true" },
    get schema() {
      return recordSchema("medical");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const scan = sampleScan(random);
        const image = `${split}/${String(k).padStart(6, "0")}.png`;
        writeFileAtomic(path.join(dir, image), await scanPng(scan));
        out.push({ id: id(split, k), image, lesions: scan.lesions, findings: scan.findings, conversations: conversationFromPairs(scanInstructions(scan, random)), synthetic: true });
      }
      return out;
    },
    texts: (r) => r.conversations.map((t: any) => t.value.replace("<image>\n", "")),
  },
  code: {
    title: "Code generation: scene → drawing program",
    description: "Scenes paired with the program in mllm-labs' drawing language that renders them exactly (`background <name>`, then `<shape> <color> <size> at <x> <y>` per object). The metric executes the model's program and compares its render with the image (`scoreProgram`).",
    fields: { id: "record id", image: "PNG", program: "the drawing program", conversations: "human asks for the program, gpt answers it", synthetic: "always true" },
    get schema() {
      return recordSchema("code");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const scene = sampleScene(random, { maxObjects: 3 });
        const image = `${split}/${String(k).padStart(6, "0")}.png`;
        writeFileAtomic(path.join(dir, image), await renderScene(scene));
        const program = sceneToProgram(scene);
        const ask = CODE_INSTRUCTIONS[random.int(0, CODE_INSTRUCTIONS.length)];
        out.push({ id: id(split, k), image, program, conversations: conversationFromPairs([{ instruction: ask, response: program }]), synthetic: true });
      }
      return out;
    },
    texts: (r) => [r.program],
  },
  sentiment: {
    title: "Multimodal sentiment: faces and texts",
    description: "Drawn faces (smiling, frowning, neutral) with a short text that agrees with the face about half the time. Label: agree → that sentiment; one side neutral → the other; positive against negative → neutral (mixed).",
    fields: { id: "record id", image: "PNG of the face", face: "the face's sentiment", text: "the text", text_sentiment: "the text's sentiment", label: "combined label", conversations: "human asks for the sentiment of image + text, gpt answers", synthetic: "always true" },
    get schema() {
      return recordSchema("sentiment");
    },
    async generate({ dir, split, count, random }) {
      const out: object[] = [];
      for (let k = 0; k < count; k++) {
        const sample = sampleSentiment(random);
        const image = `${split}/${String(k).padStart(6, "0")}.png`;
        writeFileAtomic(path.join(dir, image), await svgToPng(sample.svg));
        const ask = sentimentInstruction(sample.text);
        out.push({ id: id(split, k), image, face: sample.face, text: sample.text, text_sentiment: sample.textSentiment, label: sample.label, conversations: conversationFromPairs([{ instruction: ask, response: sample.label }]), synthetic: true });
      }
      return out;
    },
    texts: (r) => [r.text, `the overall sentiment is ${r.label}.`],
  },
};

async function saveTensorFile(file: string, name: string, values: Float32Array, shape: number[]): Promise<void> {
  await saveSafetensors(file, { [name]: { dtype: "F32", shape, data: values } });
}

/** Generates the world (or some of its sets); returns the manifest written to `world.json`. */
export async function generateWorld(args: GenerateWorldArgs): Promise<Record<string, unknown>> {
  const size = args.size ?? "small";
  if (size !== "small" && size !== "large") throw new Error(`generateWorld: size must be "small" or "large", got ${JSON.stringify(size)}`);
  const seed = args.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`generateWorld: seed must be a non-negative integer, got ${seed}`);
  const log = args.log ?? ((line: string) => console.log(line));
  const names = args.sets ?? [...Object.keys(GENERATORS), "text"];
  for (const name of names) if (name !== "text" && !GENERATORS[name]) throw new Error(`generateWorld: unknown set ${JSON.stringify(name)}; expected one of ${[...Object.keys(GENERATORS), "text"].join(", ")}`);
  const scale = size === "large" ? 10 : 1;
  const speech = speechSynthesizer();
  const corpus: Record<Split, string[]> = { train: [], val: [], test: [] };
  const sets: Record<string, Record<Split, number>> = {};
  for (const name of Object.keys(GENERATORS)) {
    const wanted = names.includes(name);
    if (!wanted && !(names.includes("text"))) continue;
    const generator = GENERATORS[name];
    const dir = path.join(args.out, name);
    const counts = {} as Record<Split, number>;
    for (const split of SPLITS) {
      const count = SMALL_COUNTS[name][split] * scale;
      counts[split] = count;
      let records: object[];
      if (wanted) {
        const started = Date.now();
        fs.rmSync(path.join(dir, split), { recursive: true, force: true });
        records = await generator.generate({ dir, split, count, random: new Random(splitSeed(seed, name, split)) });
        writeFileAtomic(path.join(dir, `${split}.jsonl`), toJsonl(records));
        log(`${name}/${split}: ${records.length} records (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } else {
        records = readJsonlFile(path.join(dir, `${split}.jsonl`));
      }
      for (const r of records) corpus[split].push(...generator.texts(r));
    }
    sets[name] = counts;
    if (wanted) {
      writeFileAtomic(path.join(dir, "schema.json"), JSON.stringify({ title: generator.title, ...generator.schema }, null, 2) + "\n");
      const notes = name === "audio" ? [speech ? `Speech: ${speech}.` : "Speech: espeak-ng was not installed, so this set has sound events only."] : [];
      const card: DatasetCard = { name, title: generator.title, description: generator.description, fields: generator.fields, counts, seed, size, notes };
      writeFileAtomic(path.join(dir, "CARD.md"), cardMarkdown(card));
    }
  }
  if (names.includes("text")) {
    const dir = path.join(args.out, "text");
    const counts = {} as Record<Split, number>;
    for (const split of SPLITS) {
      // One line per document; duplicates kept (frequent phrasings are frequent).
      writeFileAtomic(path.join(dir, `${split}.jsonl`), toJsonl(corpus[split].map((text) => ({ text }))));
      counts[split] = corpus[split].length;
    }
    sets.text = counts;
    writeFileAtomic(path.join(dir, "schema.json"), JSON.stringify({ title: "World text", ...recordSchema("text") }, null, 2) + "\n");
    writeFileAtomic(path.join(dir, "CARD.md"), cardMarkdown({ name: "text", title: "World text", description: "All the world's text, split as the sets are (test text comes only from test records): captions, VQA questions with answers ('question: … answer: …'), story paragraphs, video captions and questions, audio and sensor captions, point-cloud captions, medical instructions and findings, drawing programs and sentiment texts. No images. Trains the tokenizer (train split) and the language backbone.", fields: { text: "one document" }, counts, seed, size }));
  }
  if (names.includes("text")) {
    // The world tokenizer: byte-level BPE on the train split's text only.
    const tokenizer = trainWorldTokenizer(corpus.train, path.join(args.out, "tokenizer"));
    log(`tokenizer: ${tokenizer.vocabSize} tokens`);
  }
  const manifest = { generator: "mllm-labs world", size, seed, speech: speech ?? null, sets };
  writeFileAtomic(path.join(args.out, "world.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/** Reads a JSONL file; errors name the file and line. */
export function readJsonlFile(file: string): any[] {
  if (!fs.existsSync(file)) throw new Error(`missing annotation file ${file}: generate the world with \`npm run data\``);
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const out: any[] = [];
  lines.forEach((line, k) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line));
    } catch (error) {
      throw new Error(`${file}, line ${k + 1}: not valid JSON (${(error as Error).message})`);
    }
  });
  return out;
}
