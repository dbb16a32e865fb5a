/**
 * Checks that make a checkpoint that does not fit its model an error instead
 * of a silently wrong model:
 *
 * - config values that no model can have (zero heads, a negative epsilon, a
 *   hidden size the heads do not divide) — {@link validateConfigValues},
 *   called when a `config.json` is read;
 * - weights in the checkpoint that the model does not use (a config with
 *   fewer layers than the checkpoint, an `lm_head.weight` that
 *   `tie_word_embeddings` would ignore) — {@link checkUnusedWeights}, called
 *   after the weights are loaded. transformers only warns about these
 *   ("Some weights of the model checkpoint were not used").
 *
 * Reference: transformers `modeling_utils.py` (`_load_pretrained_model`,
 * unexpected keys; `_keys_to_ignore_on_load_unexpected`), the models'
 * `configuration_*.py` checks.
 */
import type { HFConfig } from "./hf_config";
import type { Checkpoint } from "./safetensors";

/** Integer fields that must be ≥ 1 wherever they appear (top level or a nested `*_config`). */
const POSITIVE_INTEGERS = [
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "max_position_embeddings",
  "image_size",
  "patch_size",
  "num_channels",
  "projection_dim",
  "num_query_tokens",
  "num_mel_bins",
  "max_frames",
  "frames_per_token",
  "cross_attention_frequency",
  "encoder_hidden_size",
];

/** Number fields that must be finite and > 0. */
const POSITIVE_NUMBERS = ["rms_norm_eps", "layer_norm_eps", "rope_theta"];

/** Nested configs that are checked with the same rules. */
const NESTED = ["text_config", "vision_config", "qformer_config", "audio_config"];

/**
 * Throws for a config value no model can have, naming the file, the field and
 * the value: a size, count or head number below 1, a non-positive epsilon or
 * rope theta, a hidden size the heads do not divide (without `head_dim`),
 * query heads that key/value heads do not divide, an image size the patch
 * size does not divide.
 */
export function validateConfigValues(config: HFConfig): void {
  const json = config.json;
  const bad = (key: string, expected: string) =>
    new Error(`config: ${config.where}: "${key}" must be ${expected}, got ${JSON.stringify(json[key])}`);
  for (const key of POSITIVE_INTEGERS) {
    if (json[key] === undefined || json[key] === null) continue;
    if (!Number.isInteger(json[key]) || json[key] < 1) throw bad(key, "a positive integer");
  }
  for (const key of POSITIVE_NUMBERS) {
    if (json[key] === undefined || json[key] === null) continue;
    if (typeof json[key] !== "number" || !Number.isFinite(json[key]) || json[key] <= 0) throw bad(key, "a positive number");
  }
  const heads = json.num_attention_heads;
  if (Number.isInteger(heads) && Number.isInteger(json.hidden_size) && json.head_dim == null && json.hidden_size % heads !== 0) {
    throw new Error(
      `config: ${config.where}: "hidden_size" ${json.hidden_size} is not divisible by "num_attention_heads" ${heads} (and no "head_dim" is given)`,
    );
  }
  if (Number.isInteger(heads) && Number.isInteger(json.num_key_value_heads) && heads % json.num_key_value_heads !== 0) {
    throw new Error(
      `config: ${config.where}: "num_attention_heads" ${heads} is not divisible by "num_key_value_heads" ${json.num_key_value_heads}`,
    );
  }
  if (Number.isInteger(json.image_size) && Number.isInteger(json.patch_size) && json.image_size % json.patch_size !== 0) {
    throw new Error(
      `config: ${config.where}: "image_size" ${json.image_size} is not divisible by "patch_size" ${json.patch_size}`,
    );
  }
  for (const key of NESTED) {
    const nested = json[key];
    if (nested && typeof nested === "object" && !Array.isArray(nested))
      validateConfigValues({ json: nested, where: `${config.where} → ${key}` });
  }
}

/** Checkpoint entries no model uses (buffers older transformers saved): never an error. */
export const IGNORED_UNUSED_WEIGHTS: readonly RegExp[] = [
  /(^|\.)rotary_emb\.inv_freq$/,
  /(^|\.)position_ids$/,
  /(^|\.)num_batches_tracked$/,
];

/** Options for {@link checkUnusedWeights}. */
export interface UnusedWeightsArgs {
  /** Further unused names that are expected (e.g. the text tower when only the image tower is loaded). Default none. */
  readonly ignore?: readonly RegExp[];
}

/** Names grouped by their first layer index: `model.layers.3.mlp.up.weight` → `model.layers.3.*`. */
function groupNames(names: string[]): string[] {
  const groups = new Map<string, number>();
  for (const name of names) {
    const match = /^(.*?\.\d+)\./.exec(name);
    const key = match ? `${match[1]}.*` : name;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([key, count]) => (count > 1 ? `${key} (${count} tensors)` : key));
}

/** Whether two stored tensors hold the same values (read from the file, no tfjs tensor made). */
function sameValues(checkpoint: Checkpoint, a: string, b: string): boolean {
  const [x, y] = [checkpoint.raw(a), checkpoint.raw(b)];
  if (x.shape.join() !== y.shape.join()) return false;
  return x.data.every((value, i) => value === y.data[i]);
}

/**
 * Throws when the checkpoint holds weights the model did not use, listing them
 * (grouped by layer). An `lm_head.weight` next to tied embeddings is named
 * as such, and allowed only when it equals the embeddings.
 */
export function checkUnusedWeights(checkpoint: Checkpoint, unused: readonly string[], args: UnusedWeightsArgs = {}): void {
  const ignore = [...IGNORED_UNUSED_WEIGHTS, ...(args.ignore ?? [])];
  let left = unused.filter((name) => !ignore.some((pattern) => pattern.test(name)));
  const head = left.find((name) => /(^|\.)lm_head\.weight$/.test(name));
  if (head) {
    const embeddings = checkpoint.keys().filter((key) => /(^|\.)embed_tokens\.weight$/.test(key));
    if (embeddings.length === 1 && sameValues(checkpoint, head, embeddings[0])) {
      left = left.filter((name) => name !== head);
    } else {
      throw new Error(
        `checkpoint ${checkpoint.directory}: config.json sets tie_word_embeddings, so the model reuses the embeddings as its output layer, ` +
          `but the checkpoint has its own "${head}" (different from the embeddings) that would be ignored; set "tie_word_embeddings": false to use it, or remove it`,
      );
    }
  }
  if (left.length === 0) return;
  const groups = groupNames(left);
  const shown = groups.slice(0, 12).join(", ") + (groups.length > 12 ? `, ... (${groups.length - 12} more groups)` : "");
  throw new Error(
    `checkpoint ${checkpoint.directory}: ${left.length} weight${left.length === 1 ? "" : "s"} in the checkpoint ${left.length === 1 ? "is" : "are"} not used by the model built from config.json ` +
      `(does the config describe this checkpoint, e.g. its num_hidden_layers?): ${shown}`,
  );
}
