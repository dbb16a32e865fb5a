/**
 * Inputs that used to give a silent wrong answer, a crash or an unclear error
 * (issue 14): WAV sizes and channels, huge image decodes, empty or NaN images,
 * checkpoints that do not fit their config, bad generation arguments, and
 * the files pretrain and install-kernel must not overwrite unasked.
 */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { decodeWav, encodeWav, monoSamples, readWav } from "../src/io/wav";
import { preprocessClipImage, decodeRgb } from "../src/preprocess/clip_image";
import { whisperLogMelFromWav } from "../src/preprocess/whisper_mel";
import { image } from "../kernel-extensions/image";
import { loadBlip2, loadLlama, loadLlava } from "../src/io/pretrained";
import { readHFConfig } from "../src/io/hf_config";
import { Checkpoint, SafetensorsFile, saveCheckpoint, saveSafetensors } from "../src/io/safetensors";
import { LlamaForCausalLM, type LlamaConfig } from "../src/models/llama";
import { refuseExistingCheckpoint, writeFolderAtomically } from "../src/pretrain/checkpoint_folder";
import { pretrain } from "../src/pretrain/run";
import { installKernelspec } from "../src/kernel/kernelspec_install";
import { kernelspec } from "../src/kernel/kernelspec";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();
const tempDir = (prefix = "mllm-labs-in-") => scratch(prefix);

/** A 16-bit PCM WAV with `channels` interleaved channels and an optional lie in the data size. */
function wav16(samples: number[][], { rate = 16000, dataSize }: { rate?: number; dataSize?: number } = {}): Buffer {
  const channels = samples.length;
  const frames = samples[0].length;
  const data = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames; i++)
    for (let c = 0; c < channels; c++) data.writeInt16LE(Math.round(samples[c][i] * 32767), (i * channels + c) * 2);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write("WAVE", 8);
  header.write("fmt ", 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36);
  header.writeUInt32LE(dataSize ?? data.length, 40);
  return Buffer.concat([header, data]);
}

describe("WAV", () => {
  it("decodes the world's clips exactly as node-wav does", () => {
    const dir = path.join(root, "data", "world", "audio", "test");
    for (const name of fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".wav"))
      .slice(0, 5)) {
      const bytes = fs.readFileSync(path.join(dir, name));
      const ours = decodeWav(bytes, name);
      const theirs = require("node-wav").decode(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      expect(ours.sampleRate).toBe(theirs.sampleRate);
      expect(Buffer.from(ours.channels[0].buffer).equals(Buffer.from(theirs.channelData[0].buffer))).toBe(true);
    }
  });

  it("a truncated file or a data size that lies is an error naming the file, not NaN samples or a huge allocation", () => {
    const good = wav16([Array.from({ length: 1000 }, (_, i) => Math.sin(i / 10))]);
    expect(decodeWav(good, "good.wav").channels[0].length).toBe(1000);
    expect(() => decodeWav(good.subarray(0, 1200), "cut.wav")).toThrow(
      /cut\.wav is a corrupt WAV file: its "data" chunk says 2000 bytes, but only 1156 remain/,
    );
    // A 32 KB file claiming 4 GB of samples.
    const liar = wav16([new Array(16000).fill(0.1)], { dataSize: 0xfffffff0 });
    expect(() => decodeWav(liar, "liar.wav")).toThrow(
      /liar\.wav is a corrupt WAV file: its "data" chunk says 4294967280 bytes, but only 32000 remain/,
    );
    expect(() => decodeWav(wav16([[0.1, 0.2, 0.3]], { dataSize: 5 }), "odd.wav")).toThrow(
      /odd\.wav .*5 bytes is not a whole number of 2-byte sample frames/,
    );
  });

  it("stereo where mono is expected is an error unless a downmix is asked for", () => {
    const dir = tempDir();
    const file = path.join(dir, "stereo.wav");
    fs.writeFileSync(
      file,
      wav16([
        [0.5, 0.5],
        [-0.5, 0.25],
      ]),
    );
    const wave = readWav(file);
    expect(wave.channels).toHaveLength(2);
    expect(() => monoSamples(wave, file)).toThrow(/stereo\.wav has 2 channels; expected mono \(pass downmix/);
    expect(Array.from(monoSamples(wave, file, "first"))).toEqual(Array.from(wave.channels[0]));
    const averaged = monoSamples(wave, file, "average");
    expect(averaged[0]).toBeCloseTo(0, 4);
    expect(averaged[1]).toBeCloseTo(0.375, 4);
    expect(() => whisperLogMelFromWav(file)).toThrow(/whisperLogMel: .*stereo\.wav has 2 channels; expected mono/);
    expect(() => decodeWav(encodeWav(new Float32Array(4), 16000).subarray(0, 40), "tiny.wav")).toThrow(
      /tiny\.wav is not a WAV file/,
    );
  });
});

describe("images", () => {
  it("a 1×50,000 strip to CLIP preprocessing is refused with the sizes, not a crash", async () => {
    const sharp = require("sharp");
    const strip = await sharp({ create: { width: 1, height: 50_000, channels: 3, background: "#808080" } })
      .png()
      .toBuffer();
    await expect(preprocessClipImage(new Uint8Array(strip), { shortestEdge: 224, cropSize: [224, 224] })).rejects.toThrow(
      /the 1×50000 image resized to a shortest edge of 224 would be 224×11200000 \(2\.5 G pixels.*the limit is 33\.6 M pixels/,
    );
    const big = await sharp({ create: { width: 400, height: 400, channels: 3, background: "#808080" } })
      .png()
      .toBuffer();
    await expect(decodeRgb(new Uint8Array(big), 100_000)).rejects.toThrow(
      /image data has more than 0\.1 M pixels \(maxPixels\); it was not decoded/,
    );
    expect((await decodeRgb(new Uint8Array(big))).width).toBe(400);
  });

  it("image() refuses an empty or all-NaN tensor and notes NaN values it shows", async () => {
    const empty = tf.zeros([0, 5]);
    await expect(image(empty)).rejects.toThrow(/image: the tensor is empty \(shape \[0, 5\]\)/);
    const nan = tf.fill([4, 4], NaN);
    await expect(image(nan)).rejects.toThrow(/every value of the \[4, 4\] tensor is NaN or infinite \(16 values\)/);
    const some = tf.tensor2d([
      [0, 1],
      [NaN, 0.5],
    ]);
    const rich = await image(some);
    expect(rich.data["text/plain"]).toMatch(/1 of 4 values are NaN or infinite, shown black/);
    tf.dispose([empty, nan, some]);
  });
});

const TINY: LlamaConfig = { vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 2, seed: 1 };
const tinyConfigJson = (extra: Record<string, unknown> = {}) => ({
  model_type: "llama",
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  ...extra,
});

async function tinyCheckpoint(config = TINY, json: Record<string, unknown> = tinyConfigJson()): Promise<string> {
  const model = new LlamaForCausalLM(config);
  const directory = tempDir("mllm-labs-ckpt-");
  await saveCheckpoint(directory, model.stateDict());
  fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(json));
  model.dispose();
  return directory;
}

describe("checkpoints", () => {
  it("a config with fewer layers than the checkpoint is an error listing the unused layers", async () => {
    const directory = await tinyCheckpoint(TINY, tinyConfigJson({ num_hidden_layers: 1 }));
    const before = tf.memory().numTensors;
    expect(() => loadLlama(directory)).toThrow(
      /9 weights in the checkpoint are not used by the model .*model\.layers\.1\.\* \(9 tensors\)/,
    );
    expect(tf.memory().numTensors).toBe(before);
    // The same checkpoint with its own config loads.
    fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(tinyConfigJson()));
    loadLlama(directory).dispose();
  });

  it("tie_word_embeddings with a different lm_head.weight present is an error; an equal copy is accepted", async () => {
    const directory = await tinyCheckpoint(TINY, tinyConfigJson({ tie_word_embeddings: true }));
    expect(() => loadLlama(directory)).toThrow(
      /sets tie_word_embeddings.*has its own "lm_head\.weight" \(different from the embeddings\)/,
    );
    // lm_head.weight equal to the embeddings (as some exports store both): nothing is lost, so it loads.
    const model = new LlamaForCausalLM({ ...TINY, tieWordEmbeddings: true });
    const state = model.stateDict();
    await saveCheckpoint(directory, { ...state, "lm_head.weight": state["model.embed_tokens.weight"] });
    loadLlama(directory).dispose();
    model.dispose();
  });

  it("invalid config values are errors naming the field", async () => {
    const directory = await tinyCheckpoint();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rms_norm_eps: -1e-6 }, /"rms_norm_eps" must be a positive number, got -0\.000001/],
      [{ num_attention_heads: 0 }, /"num_attention_heads" must be a positive integer, got 0/],
      [{ hidden_size: 18, num_attention_heads: 4 }, /"hidden_size" 18 is not divisible by "num_attention_heads" 4/],
      [{ num_key_value_heads: 3 }, /"num_attention_heads" 2 is not divisible by "num_key_value_heads" 3/],
      [{ text_config: { layer_norm_eps: 0 } }, /config\.json → text_config: "layer_norm_eps" must be a positive number, got 0/],
    ];
    for (const [extra, message] of cases) {
      fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(tinyConfigJson(extra)));
      expect(() => readHFConfig(directory)).toThrow(message);
    }
  });

  it("a dtype key like toString, and a shard named .., are clear errors", async () => {
    const dir = tempDir();
    const file = path.join(dir, "x.safetensors");
    await saveSafetensors(file, { w: tf.tensor1d([1, 2]) });
    const bytes = fs.readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = bytes
      .subarray(8, 8 + headerLength)
      .toString("utf8")
      .replace('"F32"', '"toString"')
      .padEnd(headerLength + 5, " ");
    const patched = Buffer.concat([Buffer.alloc(8), Buffer.from(header), bytes.subarray(8 + headerLength)]);
    patched.writeBigUInt64LE(BigInt(header.length), 0);
    fs.writeFileSync(file, patched);
    expect(() => SafetensorsFile.open(file)).toThrow(/tensor "w": unsupported dtype "toString" \(expected one of/);
    await expect(
      saveSafetensors(path.join(dir, "y.safetensors"), { w: tf.tensor1d([1]) }, { dtypes: { w: "constructor" as never } }),
    ).rejects.toThrow(/unsupported dtype "constructor"/);

    const sharded = path.join(dir, "sharded");
    fs.mkdirSync(sharded);
    for (const shard of ["..", ".", "", "../x.safetensors"]) {
      fs.writeFileSync(path.join(sharded, "model.safetensors.index.json"), JSON.stringify({ weight_map: { w: shard } }));
      expect(() => Checkpoint.open(sharded)).toThrow(
        new RegExp(
          `maps "w" to a bad shard ${JSON.stringify(JSON.stringify(shard)).slice(1, -1).replace(/[.]/g, "\\.")} \\(expected a file name`,
        ),
      );
    }
    fs.writeFileSync(path.join(sharded, "model.safetensors.index.json"), JSON.stringify({ weight_map: null }));
    expect(() => Checkpoint.open(sharded)).toThrow(/has no "weight_map" object \(got null\)/);
  });
});

describe("generate and token ids", () => {
  it("validates maxNewTokens, topK, topP, temperature and stop tokens, an empty prompt, and ids outside the vocabulary", async () => {
    const model = new LlamaForCausalLM(TINY);
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
    const before = tf.memory().numTensors;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ maxNewTokens: 2.5 }, /maxNewTokens must be a positive integer, got 2\.5/],
      [{ maxNewTokens: -1 }, /maxNewTokens must be a positive integer, got -1/],
      [{ topK: 0, temperature: 1 }, /topK must be a positive integer, got 0/],
      [{ topP: 1.5 }, /topP must be in \(0, 1\], got 1\.5/],
      [{ topP: 0 }, /topP must be in \(0, 1\], got 0/],
      [{ temperature: Number.NaN }, /temperature must be a finite number ≥ 0/],
      [{ stopTokens: [40] }, /stop token 40 is outside the vocabulary of 40 tokens \(ids 0\.\.39\)/],
    ];
    for (const [options, message] of cases) await expect(model.generate(ids, options as never)).rejects.toThrow(message);
    const empty = tf.zeros([1, 0], "int32");
    await expect(model.generate(empty)).rejects.toThrow(/the prompt is empty \(shape \[1, 0\]\)/);
    const outside = tf.tensor2d([[1, 45, 2]], [1, 3], "int32");
    await expect(model.generate(outside)).rejects.toThrow(
      /token id 45 \(row 0, position 1\) is outside the vocabulary of 40 tokens/,
    );
    expect(() => model.forward({ inputIds: outside })).toThrow(
      /Embedding: token id 45 is outside the vocabulary of 40 tokens \(ids 0\.\.39\)/,
    );
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([ids, empty, outside]);
    model.dispose();
  });
});

describe("image-token counts in forward", () => {
  const FIXTURES = path.join(root, "test", "fixtures", "hf");
  const ids = (row: number[]) => tf.tensor2d([row], [1, row.length], "int32");

  it("LLaVA's forward refuses too many or too few image tokens, as generate does, without leaking", () => {
    const model = loadLlava(path.join(FIXTURES, "llava/model"));
    const pixels = tf.zeros([1, 3, 32, 32]);
    const before = tf.memory().numTensors;
    for (const [count, pattern] of [
      [17, /LLaVA forward: the text holds 17 image token\(s\) \(id 129\) but 1 image\(s\) give 16 feature vectors each \(16\)/],
      [3, /holds 3 image token\(s\)/],
    ] as const) {
      const input = ids([3, ...new Array(count).fill(129), 4]);
      expect(() => model.forward({ inputIds: input, pixelValues: pixels })).toThrow(pattern);
      input.dispose();
    }
    const textOnly = ids([3, 129, 4]);
    expect(() => model.forward({ inputIds: textOnly })).toThrow(/holds 1 image token\(s\) \(id 129\) but 0 image\(s\)/);
    textOnly.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const good = ids([3, ...new Array(16).fill(129), 4]);
    tf.dispose(model.forward({ inputIds: good, pixelValues: pixels }).logits);
    tf.dispose([good, pixels]);
    model.dispose();
  });

  it("BLIP-2's forward refuses a count other than numQueryTokens per image", () => {
    const model = loadBlip2(path.join(FIXTURES, "blip2/model"));
    const pixels = tf.zeros([1, 3, 32, 32]);
    const input = ids([...new Array(5).fill(129), 4]);
    expect(() => model.forward({ inputIds: input, pixelValues: pixels })).toThrow(
      /BLIP-2 forward: the text holds 5 image token\(s\) \(id 129\) but 1 image\(s\) give 6 feature vectors each/,
    );
    tf.dispose([pixels, input]);
    model.dispose();
  });
});

describe("files the user owns", () => {
  it("pretrain refuses an existing checkpoint folder before training, unless --force", async () => {
    const out = tempDir("mllm-labs-pre-");
    fs.writeFileSync(path.join(out, "config.json"), "{}");
    await expect(pretrain("language", { world: path.join(root, "data", "world"), out } as never)).rejects.toThrow(
      /already exists \(config\.json\); pass --force to replace it/,
    );
    expect(() => refuseExistingCheckpoint(out, true)).not.toThrow();
    expect(() => refuseExistingCheckpoint(path.join(out, "new"))).not.toThrow();
  });

  it("a checkpoint is written into a temporary folder and renamed into place whole; a failed write leaves the old one", async () => {
    const parent = tempDir("mllm-labs-atomic-");
    const target = path.join(parent, "ckpt");
    await writeFolderAtomically(target, async (folder) => fs.writeFileSync(path.join(folder, "a"), "1"));
    expect(fs.readFileSync(path.join(target, "a"), "utf8")).toBe("1");
    await expect(
      writeFolderAtomically(target, async (folder) => {
        fs.writeFileSync(path.join(folder, "a"), "2");
        throw new Error("disk full");
      }),
    ).rejects.toThrow(/disk full/);
    expect(fs.readFileSync(path.join(target, "a"), "utf8")).toBe("1");
    await writeFolderAtomically(target, async (folder) => fs.writeFileSync(path.join(folder, "b"), "3"));
    expect(fs.readdirSync(target)).toEqual(["b"]);
    expect(fs.readdirSync(parent)).toEqual(["ckpt"]);
  });

  it("install-kernel keeps a user's own fields, and names and backs up what it replaces", () => {
    const project = tempDir("mllm-labs-spec-");
    const first = installKernelspec(project);
    expect(first.state).toBe("created");
    expect(installKernelspec(project).state).toBe("unchanged");
    const edited = { ...kernelspec(project), env: { MLLM_THREADS: "1" }, display_name: "My labs" };
    fs.writeFileSync(first.file, JSON.stringify(edited));
    const result = installKernelspec(project);
    expect(result.state).toBe("updated");
    expect(result.kept).toEqual(["env"]);
    expect(result.replaced).toEqual(['display_name (was "My labs")']);
    const written = JSON.parse(fs.readFileSync(first.file, "utf8"));
    expect(written.env).toEqual({ MLLM_THREADS: "1" });
    expect(JSON.parse(fs.readFileSync(result.backup!, "utf8")).display_name).toBe("My labs");
  });
});
