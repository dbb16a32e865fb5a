/**
 * Reading Hugging Face `config.json` files: the file, its nested configs, and
 * typed fields. A missing required field or a value of the wrong type is an
 * error naming the file and the field.
 *
 * Model-specific mappings live beside each model (`models/<name>_spec.ts`),
 * which read fields with these helpers and leave every default to the model's
 * `resolve…Config`: an absent optional field reads as `undefined`.
 *
 * Reference: transformers `configuration_utils.py`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { validateConfigValues } from "./checkpoint_validation";

/** A parsed `config.json` and where it came from (for error messages). */
export interface HFConfig {
  readonly json: Record<string, any>;
  readonly where: string;
}

/** Reads `<dir>/config.json` (or a path to a JSON file). */
export function readHFConfig(location: string): HFConfig {
  const file = location.endsWith(".json") ? location : path.join(location, "config.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`config: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`config: ${file} is not valid JSON (${(error as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new Error(`config: ${file} is not a JSON object`);
  validateConfigValues({ json: json as Record<string, any>, where: file });
  return { json: json as Record<string, any>, where: file };
}

/** A nested config (`text_config`, `vision_config`, …), named in errors by its path. */
export function subConfig(config: HFConfig, key: string): HFConfig {
  const value = config.json[key];
  if (!value || typeof value !== "object") throw new Error(`config: ${config.where} has no "${key}" object`);
  return { json: value, where: `${config.where} → ${key}` };
}

/** A required integer field. */
export function hfInteger(config: HFConfig, key: string): number {
  const value = config.json[key];
  if (!Number.isInteger(value))
    throw new Error(`config: ${config.where}: "${key}" must be an integer, got ${JSON.stringify(value)}`);
  return value;
}

/** A required finite number. */
export function hfNumber(config: HFConfig, key: string): number {
  const value = config.json[key];
  if (typeof value !== "number" || !Number.isFinite(value))
    throw new Error(`config: ${config.where}: "${key}" must be a number, got ${JSON.stringify(value)}`);
  return value;
}

/** A required string. */
export function hfText(config: HFConfig, key: string): string {
  const value = config.json[key];
  if (typeof value !== "string")
    throw new Error(`config: ${config.where}: "${key}" must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/** An integer field that may be absent (or null): undefined then. */
export function hfOptionalInteger(config: HFConfig, key: string): number | undefined {
  return config.json[key] === undefined || config.json[key] === null ? undefined : hfInteger(config, key);
}

/** A number that may be absent (or null). */
export function hfOptionalNumber(config: HFConfig, key: string): number | undefined {
  return config.json[key] === undefined || config.json[key] === null ? undefined : hfNumber(config, key);
}

/** A string that may be absent (or null). */
export function hfOptionalText(config: HFConfig, key: string): string | undefined {
  return config.json[key] === undefined || config.json[key] === null ? undefined : hfText(config, key);
}

/** A boolean that may be absent (or null). */
export function hfOptionalBoolean(config: HFConfig, key: string): boolean | undefined {
  const value = config.json[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean")
    throw new Error(`config: ${config.where}: "${key}" must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** One id or a list of ids (`eos_token_id`), absent or null: undefined. */
export function hfIds(config: HFConfig, key: string): number[] | undefined {
  const value = config.json[key];
  if (value === null || value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (!list.every(Number.isInteger))
    throw new Error(`config: ${config.where}: "${key}" must be an integer or a list of integers, got ${JSON.stringify(value)}`);
  return list;
}

/** The `model_type` of a config (`llama`, `clip`, `llava`, `blip-2`, …). */
export function modelType(config: HFConfig): string {
  return hfText(config, "model_type");
}
