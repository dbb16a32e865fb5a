/**
 * LoRA on any model of the library: wrap the linear layers whose module path
 * matches `targetModules` (as peft matches them), freeze everything else,
 * train only the adapters; several named adapters, enable/disable, merge and
 * unmerge; save and load in peft's format (`adapter_config.json` +
 * `adapter_model.safetensors`, keys `base_model.model.<path>.lora_A.weight`),
 * so adapters move between this library and peft in both directions.
 *
 * Reference: peft `src/peft/tuners/lora/model.py` (`LoraModel`),
 * `tuners/tuners_utils.py` (`check_target_module_exists`),
 * `utils/save_and_load.py` (`get_peft_model_state_dict`, `set_peft_model_state_dict`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LoraLayer } from "./lora_layer";
import { saveSafetensors, SafetensorsFile } from "../io/safetensors";
import { Random } from "../util/random";
import { matchesTarget, isAdapterPath, patternValue } from "./module_paths";

/** LoRA settings (peft's `LoraConfig`, camel-cased). */
export interface LoraConfig {
  /** Rank r. Default 8. */
  readonly r?: number;
  /** α. Default 8. */
  readonly alpha?: number;
  /** Dropout on adapter inputs while training. Default 0. */
  readonly dropout?: number;
  /**
   * Which linear layers: a list of names, each matching a module path exactly
   * or as its last components (`"q_proj"` matches `model.layers.0.self_attn.q_proj`),
   * or one string read as a regular expression over the whole path. Required.
   */
  readonly targetModules: readonly string[] | string;
  /** α / √r instead of α / r. Default false. */
  readonly useRslora?: boolean;
  /** See {@link LoraAdapterArgs.init}. Default true. */
  readonly initLoraWeights?: boolean | "gaussian";
  /** Per-layer rank overrides: regex (matched against the path's end) → r. */
  readonly rankPattern?: Readonly<Record<string, number>>;
  /** Per-layer α overrides. */
  readonly alphaPattern?: Readonly<Record<string, number>>;
  /** Seed of the adapters' initialisers and dropout. Default 0. */
  readonly seed?: number;
}

export type ResolvedLoraConfig = Required<LoraConfig>;

/** Fills every default of a {@link LoraConfig} once (idempotent): what `addAdapter`, `save` and `readAdapterConfig` use. */
export function resolveLoraConfig(config: LoraConfig): ResolvedLoraConfig {
  if (!config.targetModules || (typeof config.targetModules !== "string" && !config.targetModules.length)) {
    throw new Error(`LoRA: targetModules must name at least one layer, got ${JSON.stringify(config.targetModules)}`);
  }
  return {
    r: config.r ?? 8,
    alpha: config.alpha ?? 8,
    dropout: config.dropout ?? 0,
    targetModules: config.targetModules,
    useRslora: config.useRslora ?? false,
    initLoraWeights: config.initLoraWeights ?? true,
    rankPattern: config.rankPattern ?? {},
    alphaPattern: config.alphaPattern ?? {},
    seed: config.seed ?? 0,
  };
}

/** Path matching lives in module_paths.ts (quantization uses it too); re-exported for the callers of the old place. */
export { matchesTarget, isAdapterPath };

/** A model with LoRA adapters on some of its linear layers. */
export class LoraModel<M extends Module = Module> {
  /** Module path → its LoRA layer. */
  readonly layers = new Map<string, LoraLayer>();
  /** Adapter name → its config. */
  readonly configs = new Map<string, ResolvedLoraConfig>();

  constructor(readonly model: M) {}

  /**
   * Adds an adapter to every matching linear layer and freezes all other
   * parameters (the base weights, and other adapters).
   */
  addAdapter(name: string, options: LoraConfig): this {
    if (this.configs.has(name)) throw new Error(`LoRA: adapter "${name}" already exists`);
    const config = resolveLoraConfig(options);
    const random = new Random(config.seed);
    const matched: string[] = [];
    for (const [modulePath, module] of this.model.namedModules()) {
      if (!modulePath || isAdapterPath(modulePath) || !matchesTarget(modulePath, config.targetModules)) continue;
      if (!(module instanceof Linear))
        throw new Error(
          `LoRA: target "${modulePath}" is a ${module.constructor.name}; only Linear layers can take LoRA adapters`,
        );
      let layer = this.layers.get(modulePath);
      if (!layer) {
        layer = new LoraLayer(module);
        module.adapter = layer;
        this.layers.set(modulePath, layer);
      }
      layer.add(name, {
        r: patternValue(config.rankPattern, modulePath) ?? config.r,
        alpha: patternValue(config.alphaPattern, modulePath) ?? config.alpha,
        dropout: config.dropout,
        useRslora: config.useRslora,
        init: config.initLoraWeights,
        seed: random.nextSeed(),
      });
      matched.push(modulePath);
    }
    if (!matched.length)
      throw new Error(`LoRA: target modules ${JSON.stringify(config.targetModules)} match no layer of the model`);
    this.configs.set(name, config);
    this.setActiveAdapters([name]);
    return this;
  }

  /** Which adapters contribute; only they are trainable. */
  setActiveAdapters(names: readonly string[]): void {
    for (const name of names)
      if (!this.configs.has(name)) throw new Error(`LoRA: no adapter "${name}" (have: ${[...this.configs.keys()].join(", ")})`);
    this.model.setTrainable(false);
    for (const layer of this.layers.values()) {
      layer.active = new Set(names.filter((name) => layer.names().includes(name)));
      for (const name of layer.names()) {
        const { A, B } = layer.weights(name);
        A.trainable = B.trainable = layer.active.has(name);
      }
    }
  }

  /** Turns every adapter off (the base model alone) or back on. */
  setAdaptersEnabled(enabled: boolean): void {
    for (const layer of this.layers.values()) layer.disabled = !enabled;
  }

  /** Dropout on or off. */
  setTraining(training: boolean): void {
    for (const layer of this.layers.values()) layer.training = training;
  }

  /** The adapters' trainable weights (what an optimiser gets). */
  trainableParameters(): tf.Variable[] {
    return this.model.trainableParameters();
  }

  /** Merges the active adapters into the base weights. */
  async merge(names?: readonly string[]): Promise<void> {
    for (const layer of this.layers.values())
      for (const name of names ?? [...layer.active]) if (layer.names().includes(name)) await layer.merge(name);
  }

  /** Subtracts merged adapters from the base weights. */
  unmerge(): void {
    for (const layer of this.layers.values()) for (const name of [...layer.merged]) layer.unmerge(name);
  }

  /** peft's `merge_and_unload`: merge the active adapters, remove every adapter, return the plain model. */
  async mergeAndUnload(): Promise<M> {
    await this.merge();
    for (const layer of this.layers.values()) layer.unload();
    this.layers.clear();
    this.configs.clear();
    this.model.setTrainable(true);
    return this.model;
  }

  /** One adapter's weights under peft's saved key names. */
  adapterStateDict(name = "default"): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [modulePath, layer] of this.layers) {
      if (!layer.names().includes(name)) continue;
      const { A, B } = layer.weights(name);
      out[`base_model.model.${modulePath}.lora_A.weight`] = A;
      out[`base_model.model.${modulePath}.lora_B.weight`] = B;
    }
    return out;
  }

  /** Writes `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors` as peft's `save_pretrained`. */
  async save(
    directory: string,
    name = "default",
    extra: { baseModelNameOrPath?: string; taskType?: string } = {},
  ): Promise<void> {
    const config = this.configs.get(name);
    if (!config) throw new Error(`LoRA: no adapter "${name}" to save`);
    fs.mkdirSync(directory, { recursive: true });
    await saveSafetensors(path.join(directory, "adapter_model.safetensors"), this.adapterStateDict(name), {
      metadata: { format: "pt" },
    });
    const peftConfig = {
      peft_type: "LORA",
      task_type: extra.taskType ?? "CAUSAL_LM",
      base_model_name_or_path: extra.baseModelNameOrPath ?? null,
      r: config.r,
      lora_alpha: config.alpha,
      lora_dropout: config.dropout,
      target_modules: typeof config.targetModules === "string" ? config.targetModules : [...config.targetModules],
      use_rslora: config.useRslora,
      init_lora_weights: config.initLoraWeights,
      rank_pattern: config.rankPattern,
      alpha_pattern: config.alphaPattern,
      bias: "none",
      fan_in_fan_out: false,
      use_dora: false,
      modules_to_save: null,
      inference_mode: true,
    };
    const file = path.join(directory, "adapter_config.json");
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(peftConfig, null, 2) + "\n");
    fs.renameSync(`${file}.tmp`, file);
  }

  /** Reads a peft adapter folder into a new adapter `name` (the adapter's weights replace the initial ones). */
  loadAdapter(directory: string, name = "default"): this {
    const config = readAdapterConfig(directory);
    this.addAdapter(name, config);
    const file = SafetensorsFile.open(path.join(directory, "adapter_model.safetensors"));
    try {
      const used = new Set<string>();
      const problems: string[] = [];
      for (const [modulePath, layer] of this.layers) {
        if (!layer.names().includes(name)) continue;
        const { A, B } = layer.weights(name);
        for (const [part, variable] of [
          ["lora_A", A],
          ["lora_B", B],
        ] as const) {
          const candidates = [
            `base_model.model.${modulePath}.${part}.weight`,
            `base_model.model.${modulePath}.${part}.${name}.weight`,
          ];
          const key = candidates.find((candidate) => file.has(candidate));
          if (!key) {
            problems.push(`missing ${candidates[0]}`);
            continue;
          }
          const tensor = file.tensor(key);
          if (tensor.shape.join() !== variable.shape.join())
            problems.push(`${key} is [${tensor.shape}] but the layer needs [${variable.shape}]`);
          else variable.assign(tensor);
          tensor.dispose();
          used.add(key);
        }
      }
      const unused = file.keys().filter((key) => !used.has(key));
      if (unused.length) problems.push(`${unused.length} tensor(s) match no adapted layer, e.g. ${unused[0]}`);
      if (problems.length) throw new Error(`LoRA: cannot load ${file.path}: ${problems.slice(0, 8).join("; ")}`);
    } catch (error) {
      for (const layer of this.layers.values()) if (layer.names().includes(name)) layer.delete(name);
      this.configs.delete(name);
      throw error;
    } finally {
      file.close();
    }
    return this;
  }
}

/** Reads peft's `adapter_config.json`, rejecting settings this library does not implement. */
export function readAdapterConfig(directory: string): ResolvedLoraConfig {
  const file = path.join(directory, "adapter_config.json");
  let json: Record<string, any>;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`LoRA: cannot read ${file}: ${(error as Error).message}`);
  }
  if (json.peft_type && json.peft_type !== "LORA") throw new Error(`LoRA: ${file} is a ${json.peft_type} adapter, not LORA`);
  const unsupported: string[] = [];
  if (json.use_dora) unsupported.push("use_dora");
  if (json.fan_in_fan_out) unsupported.push("fan_in_fan_out");
  if (json.bias && json.bias !== "none") unsupported.push(`bias=${json.bias}`);
  if (json.modules_to_save?.length) unsupported.push("modules_to_save");
  if (json.layers_to_transform !== null && json.layers_to_transform !== undefined) unsupported.push("layers_to_transform");
  if (unsupported.length) throw new Error(`LoRA: ${file} uses ${unsupported.join(", ")}, which this library does not implement`);
  if (!json.target_modules) throw new Error(`LoRA: ${file} has no target_modules`);
  const absent = (value: unknown) => value === undefined || value === null;
  return resolveLoraConfig({
    r: absent(json.r) ? undefined : json.r,
    alpha: absent(json.lora_alpha) ? undefined : json.lora_alpha,
    dropout: absent(json.lora_dropout) ? undefined : json.lora_dropout,
    targetModules: json.target_modules,
    useRslora: absent(json.use_rslora) ? undefined : Boolean(json.use_rslora),
    initLoraWeights: absent(json.init_lora_weights)
      ? undefined
      : json.init_lora_weights === "gaussian"
        ? "gaussian"
        : Boolean(json.init_lora_weights),
    rankPattern: absent(json.rank_pattern) ? undefined : json.rank_pattern,
    alphaPattern: absent(json.alpha_pattern) ? undefined : json.alpha_pattern,
  });
}

/** Wraps `model` with a new adapter (peft's `get_peft_model`). */
export function getLoraModel<M extends Module>(model: M, config: LoraConfig, name = "default"): LoraModel<M> {
  return new LoraModel(model).addAdapter(name, config);
}
