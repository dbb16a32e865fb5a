/**
 * Matching module paths (`model.layers.0.self_attn.q_proj`) the way peft does:
 * which layers LoRA wraps (`target_modules`), which it gives their own rank or
 * α (`rank_pattern`, `alpha_pattern`), and which quantization leaves in float
 * (`llm_int8_skip_modules`). Shared by lora.ts and quantize.ts.
 *
 * Reference: peft `src/peft/tuners/tuners_utils.py` (`check_target_module_exists`),
 * `utils/other.py` (`get_pattern_key`).
 */

/**
 * peft's `check_target_module_exists` for a list or a regex: each name in a
 * list matches a path exactly or as its last components (`"q_proj"` matches
 * `model.layers.0.self_attn.q_proj`); one string is a regular expression over
 * the whole path.
 */
export function matchesTarget(modulePath: string, targets: readonly string[] | string): boolean {
  if (typeof targets === "string") return new RegExp(`^(?:${targets})$`).test(modulePath);
  return targets.some((target) => modulePath === target || modulePath.endsWith(`.${target}`));
}

/** Whether a module path is inside a LoRA adapter (`….lora_A.<name>`), which is never a target itself. */
export function isAdapterPath(modulePath: string): boolean {
  return /(^|\.)lora_[AB]\./.test(modulePath);
}

/** peft's `get_pattern_key`: the value of the first pattern p with `(.*\.)?(p)$` matching the path. */
export function patternValue(patterns: Readonly<Record<string, number>> | undefined, modulePath: string): number | undefined {
  if (!patterns) return undefined;
  for (const [pattern, value] of Object.entries(patterns))
    if (new RegExp(`^(.*\\.)?(?:${pattern})$`).test(modulePath)) return value;
  return undefined;
}
