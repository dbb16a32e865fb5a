/**
 * `mllm-labs parity <fixture-dir>`: runs the library on a reference fixture
 * (a checkpoint and the inputs and outputs a reference implementation stored)
 * and compares every output.
 *
 * The fixture's kind comes from what the folder holds: `model/config.json`'s
 * `model_type` (llama, clip, llava, blip-2), `base/` + `adapter/` (a peft
 * LoRA adapter), `nf4.json` (4-bit quantization), or the stored tensors
 * (`input_features` → Whisper log-mel; `pixel_values` + an image → CLIP
 * preprocessing). Every size is read from the checkpoint and the stored
 * tensors, so fixtures made with other configurations run the same way.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SafetensorsFile } from "../io/safetensors";
import { readHFConfig, modelType } from "../io/hf_config";
import { loadLlama, loadCLIP, loadLlava, loadBlip2 } from "../io/pretrained";
import { compareTensors, compareExact, type ParityResult } from "./compare";
import { clipImageProcessorFromFixture, preprocessClipImage } from "../preprocess/clip_image";
import { whisperLogMel } from "../preprocess/whisper_mel";
import { runLoraParity } from "../peft/parity";
import { runNf4Parity } from "../peft/nf4_parity";

/** Relative tolerance for model outputs. */
export const MODEL_TOLERANCE = 1e-4;
/** Relative tolerance for CLIP preprocessing (PIL's bicubic vs ours may differ by a grey level). */
export const CLIP_PREPROCESS_TOLERANCE = 2e-2;

/** The fixture kinds `parity` knows. */
export type FixtureKind = "llama" | "clip" | "llava" | "blip-2" | "lora" | "nf4" | "whisper_mel" | "clip_preprocess";

/** What a run found. */
export interface ParityReport {
  readonly kind: FixtureKind;
  readonly directory: string;
  readonly results: ParityResult[];
  readonly ok: boolean;
}

/** Recognises a fixture folder's kind (see the module comment). */
export function fixtureKind(directory: string): FixtureKind {
  if (!fs.existsSync(directory) || !fs.statSync(directory).isDirectory()) throw new Error(`parity: ${directory} is not a directory`);
  const has = (name: string) => fs.existsSync(path.join(directory, name));
  if (has("model/config.json")) {
    const type = modelType(readHFConfig(path.join(directory, "model")));
    if (type === "llama" || type === "clip" || type === "llava" || type === "blip-2") return type;
    throw new Error(`parity: ${path.join(directory, "model/config.json")} has model_type ${JSON.stringify(type)}; supported: llama, clip, llava, blip-2`);
  }
  if (has("base/config.json") && has("adapter/adapter_config.json")) return "lora";
  if (has("nf4.json")) return "nf4";
  if (has("io.safetensors")) {
    const io = SafetensorsFile.open(path.join(directory, "io.safetensors"));
    try {
      if (io.has("input_features") && io.has("waveform")) return "whisper_mel";
      if (io.has("pixel_values") && fs.readdirSync(directory).some((name) => /\.(png|jpe?g|webp)$/i.test(name))) return "clip_preprocess";
    } finally {
      io.close();
    }
  }
  const base = path.basename(path.resolve(directory));
  if (base === "whisper_mel" || base === "clip_preprocess") return base;
  throw new Error(
    `parity: cannot tell what ${directory} holds: expected model/config.json, base/ + adapter/, nf4.json, or io.safetensors with input_features (Whisper) or pixel_values and an image (CLIP preprocessing)`,
  );
}

/** The stored inputs and outputs of a fixture. */
class FixtureTensors {
  private readonly file: SafetensorsFile;
  private readonly live: tf.Tensor[] = [];

  constructor(readonly directory: string) {
    this.file = SafetensorsFile.open(path.join(directory, "io.safetensors"));
  }

  has(name: string): boolean {
    return this.file.has(name);
  }

  /** A stored tensor's shape, from the header (no read). */
  shape(name: string): readonly number[] {
    return this.file.info(name).shape;
  }

  /** A stored tensor (freed by {@link close}). */
  get(name: string): tf.Tensor {
    if (!this.file.has(name)) throw new Error(`parity: ${path.join(this.directory, "io.safetensors")} has no "${name}"`);
    const tensor = this.file.tensor(name);
    this.live.push(tensor);
    return tensor;
  }

  close(): void {
    for (const tensor of this.live) tensor.dispose();
    this.file.close();
  }
}

/** Runs one fixture. Nothing is printed; see {@link formatReport}. */
export async function runParity(directory: string): Promise<ParityReport> {
  const kind = fixtureKind(directory);
  let results: ParityResult[];
  switch (kind) {
    case "lora":
      results = await runLoraParity(directory, MODEL_TOLERANCE);
      break;
    case "nf4":
      results = await runNf4Parity(directory);
      break;
    default: {
      const io = new FixtureTensors(directory);
      try {
        results = await RUNNERS[kind](io, directory);
      } finally {
        io.close();
      }
    }
  }
  return { kind, directory, results, ok: results.length > 0 && results.every((result) => result.ok) };
}

type Runner = (io: FixtureTensors, directory: string) => Promise<ParityResult[]>;

/** Compares `outputs[name]` with the stored `name` for every stored name given, then frees the outputs. */
async function compareAll(io: FixtureTensors, outputs: Record<string, tf.Tensor>, tolerance = MODEL_TOLERANCE): Promise<ParityResult[]> {
  const results: ParityResult[] = [];
  try {
    for (const [name, tensor] of Object.entries(outputs)) results.push(await compareTensors(name, tensor, io.get(name), tolerance));
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
  return results;
}

const RUNNERS: Record<Exclude<FixtureKind, "lora" | "nf4">, Runner> = {
  async llama(io, directory) {
    const model = loadLlama(path.join(directory, "model"));
    try {
      const inputIds = io.get("input_ids");
      const outputs: Record<string, tf.Tensor> = {};
      const forward = model.forward({ inputIds, outputHiddenStates: io.has("hidden_states.0") });
      outputs.logits = forward.logits;
      forward.hiddenStates?.forEach((state, index) => {
        if (io.has(`hidden_states.${index}`)) outputs[`hidden_states.${index}`] = state;
        else state.dispose();
      });
      if (io.has("padded_attention_mask") && io.has("padded_logits")) {
        outputs.padded_logits = model.forward({ inputIds, attentionMask: io.get("padded_attention_mask") }).logits;
      }
      const results = await compareAll(io, outputs);
      if (io.has("greedy_prompt") && io.has("greedy_output")) {
        const prompt = io.get("greedy_prompt");
        const expected = io.get("greedy_output");
        const newTokens = (expected.shape[1] as number) - (prompt.shape[1] as number);
        const generated = await model.generate(prompt, { maxNewTokens: newTokens, stopTokens: [] });
        results.push(compareExact("greedy_output", generated.flat(), (await expected.data()) as Int32Array, expected.shape));
        const uncached = await model.generate(prompt, { maxNewTokens: newTokens, stopTokens: [], useCache: false });
        results.push(compareExact("greedy_output (no KV cache)", uncached.flat(), (await expected.data()) as Int32Array, expected.shape));
      }
      return results;
    } finally {
      model.dispose();
    }
  },

  async clip(io, directory) {
    const model = loadCLIP(path.join(directory, "model"));
    try {
      const output = model.forward({ pixelValues: io.get("pixel_values"), inputIds: io.get("input_ids") });
      const outputs: Record<string, tf.Tensor> = {
        logits_per_image: output.logitsPerImage,
        image_embeds: output.imageEmbeds,
        text_embeds: output.textEmbeds,
        vision_last_hidden_state: output.vision.lastHiddenState,
        vision_pooler_output: output.vision.poolerOutput,
      };
      output.vision.hiddenStates.forEach((state, index) => (outputs[`vision_hidden_states.${index}`] = state));
      // transformers 5 reports CLIPModel's vision pooler output after the visual projection (width P, unnormalised).
      if (io.has("vision_pooler_output") && io.shape("vision_pooler_output")[1] === model.config.projectionDim && model.config.projectionDim !== model.config.vision.hiddenSize) {
        outputs.vision_pooler_output = model.visualProjection.apply(output.vision.poolerOutput);
        output.vision.poolerOutput.dispose();
      }
      const unused = [output.logitsPerText, output.text.lastHiddenState, output.text.poolerOutput];
      for (const name of Object.keys(outputs)) {
        if (!io.has(name)) {
          unused.push(outputs[name]);
          delete outputs[name];
        }
      }
      tf.dispose(unused);
      return await compareAll(io, outputs);
    } finally {
      model.dispose();
    }
  },

  async llava(io, directory) {
    const model = loadLlava(path.join(directory, "model"));
    try {
      const inputs = { inputIds: io.get("input_ids"), pixelValues: io.get("pixel_values") };
      await model.checkInputs(inputs);
      return await compareAll(io, { logits: model.forward(inputs).logits });
    } finally {
      model.dispose();
    }
  },

  async "blip-2"(io, directory) {
    const model = loadBlip2(path.join(directory, "model"));
    try {
      const pixelValues = io.get("pixel_values");
      const outputs: Record<string, tf.Tensor> = {};
      if (io.has("input_ids") && io.has("logits")) {
        const inputs = { pixelValues, inputIds: io.get("input_ids") };
        await model.checkInputs(inputs);
        const output = model.forward(inputs);
        Object.assign(outputs, {
          logits: output.logits,
          vision_last_hidden_state: output.visionLastHiddenState,
          qformer_last_hidden_state: output.qformerLastHiddenState,
          language_projection: output.languageModelInputs,
        });
      } else {
        const image = model.encodeImage(pixelValues);
        Object.assign(outputs, {
          vision_last_hidden_state: image.visionLastHiddenState,
          qformer_last_hidden_state: image.qformerLastHiddenState,
          language_projection: image.languageModelInputs,
        });
      }
      for (const name of Object.keys(outputs)) {
        if (!io.has(name)) {
          outputs[name].dispose();
          delete outputs[name];
        }
      }
      return await compareAll(io, outputs);
    } finally {
      model.dispose();
    }
  },

  async whisper_mel(io) {
    const reference = io.get("input_features"); // [1, nMels, frames]
    const waveform = (await io.get("waveform").data()) as Float32Array;
    const [, melBins, frames] = reference.shape;
    const features = whisperLogMel(waveform, { melBins, frames });
    try {
      return [await compareTensors("input_features", features, reference, MODEL_TOLERANCE)];
    } finally {
      features.dispose();
    }
  },

  async clip_preprocess(io, directory) {
    const reference = io.get("pixel_values"); // [1, 3, S, S]
    const image = fs.readdirSync(directory).find((name) => /\.(png|jpe?g|webp)$/i.test(name))!;
    const processor = clipImageProcessorFromFixture(directory, reference.shape[2] as number, reference.shape[3] as number);
    const pixels = await preprocessClipImage(path.join(directory, image), processor);
    return [await compareTensors("pixel_values", pixels.data, reference, CLIP_PREPROCESS_TOLERANCE, [1, ...pixels.shape])];
  },
};

/** A report as aligned lines, one per output, then a verdict. */
export function formatReport(report: ParityReport): string {
  const lines = [`parity ${report.kind}: ${report.directory}`];
  const width = Math.max(...report.results.map((result) => result.name.length), 10);
  for (const result of report.results) {
    const numbers = `max_abs=${result.maxAbs.toExponential(3)}  rel=${result.relative.toExponential(3)}  (tolerance ${result.tolerance.toExponential(0)})`;
    lines.push(`  ${result.ok ? "ok  " : "FAIL"}  ${result.name.padEnd(width)}  [${result.shape.join(", ")}]  ${numbers}`);
  }
  const failed = report.results.filter((result) => !result.ok).length;
  lines.push(report.ok ? `parity ${report.kind}: all ${report.results.length} outputs within tolerance` : `parity ${report.kind}: ${failed} of ${report.results.length} outputs outside tolerance`);
  return lines.join("\n");
}
