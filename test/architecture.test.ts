/**
 * The layering of docs/ARCHITECTURE.md, checked: every relative import in
 * src/ goes to a folder its own folder may import. A new folder, or a new
 * arrow between folders, needs a line here and in the document.
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";

const SRC = path.join(__dirname, "..", "src");

/** folder → the folders it may import (itself always). `*`: any. Keep in step with docs/ARCHITECTURE.md. */
const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  engine: ["util", "kernels"],
  kernels: ["util", "engine"],
  nn: ["kernels", "engine", "util"],
  train: ["kernels", "engine", "nn", "util"],
  models: ["nn", "kernels", "util", "io"],
  io: ["models", "nn", "util"],
  peft: ["nn", "kernels", "engine", "io", "util"],
  preprocess: ["io", "util"],
  tokenizer: ["util"],
  data: ["io", "preprocess", "tokenizer", "util"],
  metrics: ["data", "tokenizer", "models", "util"], // scores of model outputs; retrieval reuses models/sampling's argmax
  lab: ["nn", "engine", "util"],
  pipelines: ["data", "engine", "io", "models", "nn", "kernels", "preprocess", "tokenizer", "util"],
  parity: ["io", "models", "nn", "kernels", "engine", "peft", "preprocess", "util"],
  pretrain: [
    "data",
    "engine",
    "io",
    "metrics",
    "models",
    "nn",
    "kernels",
    "peft",
    "pipelines",
    "preprocess",
    "tokenizer",
    "train",
    "util",
  ],
  jupyter: ["util"],
  kernel: ["jupyter", "engine", "util"], // the kernel preloads the engine
  runner: ["jupyter", "kernel", "util"],
  checker: ["runner", "jupyter", "kernel", "util"],
  exercises: ["runner", "jupyter", "kernel", "util"],
  grade: ["runner", "checker", "exercises", "jupyter", "kernel", "util"],
  cli: ["*"],
};

function sourceFiles(directory: string): string[] {
  return fs.readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** Each relative import of a file, as the src/ path it resolves to. */
function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  const specifiers = [...text.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+)"/g)].map((match) => match[1]);
  return specifiers.map((specifier) => path.relative(SRC, path.resolve(path.dirname(file), specifier)));
}

describe("layering", () => {
  it("every folder of src/ has its rule", () => {
    const folders = fs
      .readdirSync(SRC, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect(folders.filter((folder) => !ALLOWED[folder])).toEqual([]);
  });

  it("no import runs against the layers (models reach io/ only for hf_config.ts)", () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = path.relative(SRC, file).split(path.sep)[0];
      if (from.endsWith(".ts")) continue; // src/index.ts: the public surface imports everything
      const allowed = ALLOWED[from] ?? [];
      for (const target of relativeImports(file)) {
        const to = target.split(path.sep)[0];
        if (to === from || to.startsWith("..") || allowed.includes("*")) continue;
        if (!allowed.includes(to)) violations.push(`${path.relative(SRC, file)} → ${target}`);
        else if (from === "models" && to === "io" && target !== path.join("io", "hf_config"))
          violations.push(`${path.relative(SRC, file)} → ${target} (models read only io/hf_config)`);
      }
    }
    expect(violations).toEqual([]);
  });
});
