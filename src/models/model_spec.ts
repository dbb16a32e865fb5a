/**
 * What the library knows about one model architecture, in one object: how its
 * Hugging Face `config.json` maps to the typed config and back, under which
 * names its parameters may be stored, how to build it, and (optionally) how
 * `mllm-labs parity` runs it on a reference fixture.
 *
 * Each model file has a spec beside it (`llama_spec.ts`, …); `registry.ts`
 * collects them, and the checkpoint loader (`io/pretrained.ts`), `parity` and
 * `eval` look models up there. Adding a model = adding its file and its spec,
 * and one line in the registry.
 *
 * Reference: transformers' auto classes (`models/auto/configuration_auto.py`:
 * model_type → config class → model class).
 */
import type * as tf from "@tensorflow/tfjs";
import type { HFConfig } from "../io/hf_config";
import type { Module } from "../nn/module";

/** Prefix rewrites: a parameter named `<from>rest` may be stored as `<to>rest`. */
export type KeyAliases = readonly (readonly [from: string, to: string])[];

/** Candidate stored names of a parameter, itself first, then its aliases in order. */
export function candidateKeys(name: string, aliases: KeyAliases): string[] {
  const out = [name];
  for (const [from, to] of aliases) if (name.startsWith(from)) out.push(to + name.slice(from.length));
  return out;
}

/**
 * A hook for parameters a checkpoint layout stores differently (BLIP-2's
 * separate `q_bias` and `v_bias`): given a parameter's name and a reader of
 * stored keys, return the tensor, or undefined to report it missing.
 */
export type SpecialKeyReader = (name: string, read: (key: string) => tf.Tensor | undefined) => tf.Tensor | undefined;

/** The stored inputs and outputs of a parity fixture (`io.safetensors`), as a spec's parity hook sees them. */
export interface StoredTensors {
  has(name: string): boolean;
  /** A stored tensor's shape, read from the header. */
  shape(name: string): readonly number[];
  /** A stored tensor; the fixture frees it. */
  get(name: string): tf.Tensor;
}

/** What a spec's parity hook computed, named as the fixture stores the references. */
export interface ParityOutputs {
  /** Float outputs compared within the model tolerance; the caller disposes them. Names the fixture lacks are skipped. */
  readonly tensors: Record<string, tf.Tensor>;
  /** Integer outputs compared exactly with the stored tensor of `reference` (generated tokens). */
  readonly exact?: readonly { readonly name: string; readonly reference: string; readonly values: ArrayLike<number> }[];
}

/** One architecture. `C` is its resolved config, `M` its top-level module. */
export interface ModelSpec<C = any, M extends Module = Module> {
  /** The `model_type` written to config.json and read back. */
  readonly modelType: string;
  /** Other `model_type`s read as this architecture (Mistral configs as Llama). */
  readonly alsoReads?: readonly string[];
  /** config.json → the resolved config (every default filled by the model's `resolve…Config`). */
  readonly fromHF: (config: HFConfig) => C;
  /** The config → a config.json document as `save_pretrained` writes it. */
  readonly toHF: (config: C) => Record<string, unknown>;
  /** Other layouts the parameters may be stored under (tried after the parameter's own name). */
  readonly keyAliases: KeyAliases;
  /** See {@link SpecialKeyReader}. */
  readonly specialKeys?: SpecialKeyReader;
  /** Builds the model (random initialisation, seeded by the config). */
  readonly create: (config: C) => M;
  /**
   * Runs the model on a fixture's stored inputs for `mllm-labs parity`
   * (absent: the architecture has no reference fixture).
   */
  readonly parity?: (model: M, stored: StoredTensors) => Promise<ParityOutputs>;
}
