/**
 * Sanitizers: what may differ between two honest runs of the same lab is
 * replaced by a placeholder before outputs are compared (nbval's
 * `--sanitize-with`, built in).
 *
 * Everywhere (group `always`: these differ between honest runs on any machine):
 * - absolute paths                      → `<path>`
 * - dates and times of day              → `<date>`
 * - the tfjs banner about tfjs-node, and lines tfjs logs about platforms and kernels, are removed.
 *
 * Only in cells that say so (a duration or a size elsewhere is a number like any other):
 * - group `time`, cell tag `check-sanitize-time`: durations, rates and clock times → `<time>`
 *   (e.g. `12.3 s`, `45ms`, `1m02s`, `3.1 steps/s`, `ETA 00:12`)
 * - group `bytes`, cell tag `check-sanitize-bytes`: memory sizes → `<bytes>` (e.g. `12.5 MB`, `2048 bytes`, `1.2 GiB`)
 */

/** When a sanitizer applies: in every cell, or only in cells tagged for durations or for memory sizes. */
export type SanitizerGroup = "always" | "time" | "bytes";

/** One sanitizer: a pattern and what replaces it. */
export interface Sanitizer {
  name: string;
  /** Where it applies (see {@link sanitizersFor}). */
  group: SanitizerGroup;
  pattern: RegExp;
  replacement: string;
}

/** Cell tag: durations, rates and clock times in the cell's outputs are sanitized to `<time>`. */
export const SANITIZE_TIME_TAG = "check-sanitize-time";
/** Cell tag: memory sizes in the cell's outputs are sanitized to `<bytes>`. */
export const SANITIZE_BYTES_TAG = "check-sanitize-bytes";

const NUMBER = String.raw`\d+(?:\.\d+)?`;

/** Every sanitizer, in the order they apply (durations before sizes, paths last). */
export const DEFAULT_SANITIZERS: readonly Sanitizer[] = [
  {
    name: "tfjs banner",
    group: "always",
    pattern: /\n?=+\nHi,? (?:there 👋\. )?[Ll]ooks like you are running TensorFlow\.js in Node\.js[^\n]*\n=+\n?/g,
    replacement: "\n",
  },
  {
    name: "tfjs platform notes",
    group: "always",
    pattern:
      /^(?:Platform \w+ has already been set\.|The kernel '[^']+' for backend '[^']+' is already registered|.*Overwriting the platform with \w+\.)[^\n]*\n?/gm,
    replacement: "",
  },
  {
    name: "dates",
    group: "always",
    pattern: /\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?/g,
    replacement: "<date>",
  },
  {
    name: "clock times",
    group: "time",
    pattern: /\b(?:ETA|elapsed|eta|remaining)[: ]\s*(?:\d+:)?\d{1,2}:\d{2}\b/g,
    replacement: "<time>",
  },
  {
    name: "compound durations",
    group: "time",
    pattern: /\b\d+h\s?\d+m(?:\s?\d+(?:\.\d+)?s)?\b|\b\d+m\s?\d+(?:\.\d+)?s\b/g,
    replacement: "<time>",
  },
  {
    name: "rates",
    group: "time",
    pattern: new RegExp(
      String.raw`\b${NUMBER}\s?(?:steps|it|samples|tokens|images|cells|examples|ex)\/s(?:ec)?\b|\b${NUMBER}\s?(?:s|ms|µs|us)\/(?:step|it|cell|token|batch|image)\b`,
      "g",
    ),
    replacement: "<time>",
  },
  {
    name: "durations",
    group: "time",
    pattern: new RegExp(String.raw`\b${NUMBER}\s?(?:ms|µs|us|ns|s|sec|secs|seconds?|min|minutes?)\b(?!\w)`, "g"),
    replacement: "<time>",
  },
  {
    name: "memory sizes",
    group: "bytes",
    pattern: new RegExp(String.raw`\b${NUMBER}\s?(?:[KMGT]i?B|bytes?|B)\b`, "g"),
    replacement: "<bytes>",
  },
  { name: "absolute paths", group: "always", pattern: /(?<![\w.<])(?:\/(?:[\w.@+-]+))+\/?/g, replacement: "<path>" },
];

/** The sanitizers that apply everywhere (paths, dates, the tfjs banner and platform notes), in order. */
export const ALWAYS_SANITIZERS: readonly Sanitizer[] = DEFAULT_SANITIZERS.filter((s) => s.group === "always");

/**
 * The sanitizers for a cell with these tags, in order: the `always` group,
 * plus durations with `check-sanitize-time` and memory sizes with
 * `check-sanitize-bytes`.
 */
export function sanitizersFor(tags: readonly string[]): readonly Sanitizer[] {
  const time = tags.includes(SANITIZE_TIME_TAG);
  const bytes = tags.includes(SANITIZE_BYTES_TAG);
  if (!time && !bytes) return ALWAYS_SANITIZERS;
  return DEFAULT_SANITIZERS.filter((s) => s.group === "always" || (time && s.group === "time") || (bytes && s.group === "bytes"));
}

/** Applies the sanitizers in order (by default all of them, durations and sizes included). */
export function sanitize(text: string, sanitizers: readonly Sanitizer[] = DEFAULT_SANITIZERS): string {
  let out = text;
  for (const { pattern, replacement } of sanitizers) out = out.replace(pattern, replacement);
  return out;
}
