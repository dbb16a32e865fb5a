/**
 * `mllm-labs parity <fixture-dir>`: runs the library on a reference fixture
 * (a checkpoint and the inputs and outputs a reference implementation stored)
 * and compares every output.
 *
 * The fixture's kind comes from what the folder holds: `model/config.json`'s
 * `model_type` (any model in models/registry.ts whose spec has a parity
 * hook: llama, clip, llava, blip-2), `base/` + `adapter/` (a peft
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
import { loadWithSpec } from "../io/pretrained";
import { findModelSpec, MODEL_SPECS } from "../models/registry";
import { compareTensors, compareExact, type ParityResult } from "./compare";
import { clipImageProcessorFromFixture, preprocessClipImage } from "../preprocess/clip_image";
import { whisperLogMel } from "../preprocess/whisper_mel";
import { runLoraParity } from "./lora";
import { runNf4Parity } from "./nf4";

/** Relative tolerance for model outputs. */
export const MODEL_TOLERANCE = 1e-4;
/** Relative tolerance for CLIP preprocessing (PIL's bicubic vs ours may differ by a grey level). */
export const CLIP_PREPROCESS_TOLERANCE = 2e-2;

/** The fixture kinds `parity` knows: a registered model's `model_type`, or one of the others. */
export type FixtureKind = string;

/** The model types with a parity hook, in registry order. */
export function parityModelTypes(): string[] {
  return MODEL_SPECS.filter((spec) => spec.parity).map((spec) => spec.modelType);
}

/** What a run found. */
export interface ParityReport {
  readonly kind: FixtureKind;
  readonly directory: string;
  readonly results: ParityResult[];
  readonly ok: boolean;
}

/** Recognises a fixture folder's kind (see the module comment). */
export function fixtureKind(directory: string): FixtureKind {
  if (!fs.existsSync(directory) || !fs.statSync(directory).isDirectory())
    throw new Error(`parity: ${directory} is not a directory`);
  const has = (name: string) => fs.existsSync(path.join(directory, name));
  if (has("model/config.json")) {
    const type = modelType(readHFConfig(path.join(directory, "model")));
    const spec = findModelSpec(type);
    if (spec?.parity) return spec.modelType;
    throw new Error(
      `parity: ${path.join(directory, "model/config.json")} has model_type ${JSON.stringify(type)}; supported: ${parityModelTypes().join(", ")}`,
    );
  }
  if (has("base/config.json") && has("adapter/adapter_config.json")) return "lora";
  if (has("nf4.json")) return "nf4";
  if (has("io.safetensors")) {
    const io = SafetensorsFile.open(path.join(directory, "io.safetensors"));
    try {
      if (io.has("input_features") && io.has("waveform")) return "whisper_mel";
      if (io.has("pixel_values") && fs.readdirSync(directory).some((name) => /\.(png|jpe?g|webp)$/i.test(name)))
        return "clip_preprocess";
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
        results =
          kind === "whisper_mel" || kind === "clip_preprocess"
            ? await PREPROCESSING[kind](io, directory)
            : await runModelParity(kind, io, directory);
      } finally {
        io.close();
      }
    }
  }
  return { kind, directory, results, ok: results.length > 0 && results.every((result) => result.ok) };
}

/** Loads `<fixture>/model` through the registry, runs its spec's parity hook and compares every stored output. */
async function runModelParity(kind: string, io: FixtureTensors, directory: string): Promise<ParityResult[]> {
  const spec = MODEL_SPECS.find((candidate) => candidate.modelType === kind && candidate.parity);
  if (!spec)
    throw new Error(
      `parity: no model spec with a parity hook for ${JSON.stringify(kind)}; supported: ${parityModelTypes().join(", ")}`,
    );
  const model = loadWithSpec(path.join(directory, "model"), spec);
  try {
    const { tensors, exact = [] } = await spec.parity!(model, io);
    const results = await compareStored(io, tensors);
    for (const { name, reference, values } of exact) {
      const expected = io.get(reference);
      results.push(compareExact(name, values, (await expected.data()) as Int32Array, expected.shape));
    }
    return results;
  } finally {
    model.dispose();
  }
}

/** Compares `outputs[name]` with the stored `name` for every name the fixture stores (others are skipped), then frees all outputs. */
async function compareStored(
  io: FixtureTensors,
  outputs: Record<string, tf.Tensor>,
  tolerance = MODEL_TOLERANCE,
): Promise<ParityResult[]> {
  const results: ParityResult[] = [];
  try {
    for (const [name, tensor] of Object.entries(outputs))
      if (io.has(name)) results.push(await compareTensors(name, tensor, io.get(name), tolerance));
  } finally {
    tf.dispose(Object.values(outputs));
  }
  return results;
}

type Runner = (io: FixtureTensors, directory: string) => Promise<ParityResult[]>;

/** The fixtures of the preprocessing code (no model). */
const PREPROCESSING: Record<"whisper_mel" | "clip_preprocess", Runner> = {
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
  lines.push(
    report.ok
      ? `parity ${report.kind}: all ${report.results.length} outputs within tolerance`
      : `parity ${report.kind}: ${failed} of ${report.results.length} outputs outside tolerance`,
  );
  return lines.join("\n");
}
