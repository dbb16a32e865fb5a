/**
 * `mllm-labs install-kernel` (and `npm install`'s postinstall): writes the
 * project's kernelspec without losing a user's edits to it.
 *
 * Fields the project does not write (`env`, extra `metadata` keys, anything
 * else) are kept. Fields it writes (`argv`, `display_name`, `language`,
 * `interrupt_mode`, `metadata.debugger`) are set to the project's values; each
 * one whose existing value differed is named in the result, and the previous
 * file is kept as `kernel.json.bak`, so nothing is replaced silently.
 */
import * as fs from "fs";
import * as path from "path";
import { jupyterDataDir, KERNEL_NAME, kernelspec } from "./kernelspec";

/** What {@link installKernelspec} did. */
export interface KernelspecInstall {
  /** The kernel.json written. */
  file: string;
  /** "created", "unchanged" or "updated". */
  state: "created" | "unchanged" | "updated";
  /** Fields whose earlier value was replaced, with that value (e.g. `argv (was ["/old/node", ...])`). */
  replaced: string[];
  /** Fields of the earlier file that were kept as they were (the user's own). */
  kept: string[];
  /** The copy of the earlier file, when anything in it was replaced. */
  backup?: string;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Writes (or updates) `<project>/.jupyter/kernels/mllm-labs/kernel.json`, keeping a user's own fields. */
export function installKernelspec(projectRoot: string, nodePath = process.execPath): KernelspecInstall {
  const dir = path.join(jupyterDataDir(projectRoot), "kernels", KERNEL_NAME);
  const file = path.join(dir, "kernel.json");
  const generated = kernelspec(projectRoot, nodePath) as Record<string, any>;
  let existing: Record<string, any> | undefined;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) existing = parsed;
    } catch {
      existing = undefined;
    }
    if (!existing) {
      // Not a JSON object: keep it as the backup and write a fresh one.
      fs.writeFileSync(`${file}.bak`, text);
      writeJson(file, generated);
      return { file, state: "updated", replaced: ["the whole file (it was not a JSON object)"], kept: [], backup: `${file}.bak` };
    }
  }
  if (!existing) {
    fs.mkdirSync(dir, { recursive: true });
    writeJson(file, generated);
    return { file, state: "created", replaced: [], kept: [] };
  }
  const merged: Record<string, any> = { ...existing };
  const replaced: string[] = [];
  for (const [key, value] of Object.entries(generated)) {
    if (key === "metadata") {
      const before = existing.metadata && typeof existing.metadata === "object" ? existing.metadata : {};
      merged.metadata = { ...before, ...value };
      for (const [inner, innerValue] of Object.entries(value as object)) {
        if (inner in before && !same(before[inner], innerValue))
          replaced.push(`metadata.${inner} (was ${JSON.stringify(before[inner])})`);
      }
      continue;
    }
    if (key in existing && !same(existing[key], value)) replaced.push(`${key} (was ${JSON.stringify(existing[key])})`);
    merged[key] = value;
  }
  const kept = Object.keys(existing).filter((key) => !(key in generated));
  if (same(merged, existing)) return { file, state: "unchanged", replaced: [], kept };
  let backup: string | undefined;
  if (replaced.length > 0) {
    backup = `${file}.bak`;
    fs.copyFileSync(file, backup);
  }
  writeJson(file, merged);
  return { file, state: "updated", replaced, kept, backup };
}

function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

/** The result in words, for the command line. */
export function describeInstall(result: KernelspecInstall): string {
  const lines = [`kernelspec ${result.state}: ${result.file}`];
  if (result.replaced.length > 0) lines.push(`  replaced: ${result.replaced.join("; ")}`);
  if (result.kept.length > 0) lines.push(`  kept your fields: ${result.kept.join(", ")}`);
  if (result.backup) lines.push(`  the earlier file is saved as ${result.backup}`);
  return lines.join("\n");
}
