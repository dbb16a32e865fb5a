/**
 * Sanitizers: what may differ between two honest runs of the same lab is
 * replaced by a placeholder before outputs are compared (nbval's
 * `--sanitize-with`, built in).
 *
 * - absolute paths                      → `<path>`
 * - durations, rates and clock times    → `<time>` (e.g. `12.3 s`, `45ms`, `1m02s`, `3.1 steps/s`, `ETA 00:12`)
 * - dates and times of day              → `<date>`
 * - memory sizes                        → `<bytes>` (e.g. `12.5 MB`, `2048 bytes`, `1.2 GiB`)
 * - the tfjs banner about tfjs-node, and lines tfjs logs about platforms and kernels, are removed.
 */

/** One sanitizer: a pattern and what replaces it. */
export interface Sanitizer {
  name: string;
  pattern: RegExp;
  replacement: string;
}

const NUMBER = String.raw`\d+(?:\.\d+)?`;

export const DEFAULT_SANITIZERS: readonly Sanitizer[] = [
  {
    name: "tfjs banner",
    pattern: /\n?=+\nHi,? (?:there 👋\. )?[Ll]ooks like you are running TensorFlow\.js in Node\.js[^\n]*\n=+\n?/g,
    replacement: "\n",
  },
  {
    name: "tfjs platform notes",
    pattern:
      /^(?:Platform \w+ has already been set\.|The kernel '[^']+' for backend '[^']+' is already registered|.*Overwriting the platform with \w+\.)[^\n]*\n?/gm,
    replacement: "",
  },
  {
    name: "dates",
    pattern: /\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?/g,
    replacement: "<date>",
  },
  { name: "clock times", pattern: /\b(?:ETA|elapsed|eta|remaining)[: ]\s*(?:\d+:)?\d{1,2}:\d{2}\b/g, replacement: "<time>" },
  {
    name: "compound durations",
    pattern: /\b\d+h\s?\d+m(?:\s?\d+(?:\.\d+)?s)?\b|\b\d+m\s?\d+(?:\.\d+)?s\b/g,
    replacement: "<time>",
  },
  {
    name: "rates",
    pattern: new RegExp(
      String.raw`\b${NUMBER}\s?(?:steps|it|samples|tokens|images|cells|examples|ex)\/s(?:ec)?\b|\b${NUMBER}\s?(?:s|ms|µs|us)\/(?:step|it|cell|token|batch|image)\b`,
      "g",
    ),
    replacement: "<time>",
  },
  {
    name: "durations",
    pattern: new RegExp(String.raw`\b${NUMBER}\s?(?:ms|µs|us|ns|s|sec|secs|seconds?|min|minutes?)\b(?!\w)`, "g"),
    replacement: "<time>",
  },
  {
    name: "memory sizes",
    pattern: new RegExp(String.raw`\b${NUMBER}\s?(?:[KMGT]i?B|bytes?|B)\b`, "g"),
    replacement: "<bytes>",
  },
  { name: "absolute paths", pattern: /(?<![\w.<])(?:\/(?:[\w.@+-]+))+\/?/g, replacement: "<path>" },
];

/** Applies the sanitizers in order. */
export function sanitize(text: string, sanitizers: readonly Sanitizer[] = DEFAULT_SANITIZERS): string {
  let out = text;
  for (const { pattern, replacement } of sanitizers) out = out.replace(pattern, replacement);
  return out;
}
