/**
 * Where a lab finds its data: the synthetic world (`data/world`, made by
 * `npm run data`), the sample files (`data/samples`) and the pretrained
 * checkpoints (`data/checkpoints`, made by `npm run pretrain -- NAME`).
 *
 * The paths are absolute and found from the library's own location (the
 * project root, see `util/project_root.ts`), so a notebook gets the same file
 * whether its kernel runs in `solutions/`, `notebooks/`, the repository root
 * or anywhere else: `worldPath("scenes")` replaces `path.join("..", "data", "world", "scenes")`.
 *
 * Reference: d2l's `d2l.download`/`DATA_HUB` (one function per data source, no paths pasted into notebooks).
 */
import * as fs from "fs";
import * as path from "path";
import { projectRoot } from "../util/project_root";

/**
 * Environment variable naming another world folder (one made with
 * `npm run data -- --seed N --out DIR`) for {@link worldPath} to read instead
 * of `data/world`: a lab re-run on a world it was never tuned on.
 */
export const WORLD_ENV = "MLLM_LABS_WORLD";

/** The project's `data/` folder, or a file or folder inside it; throws if it does not exist. */
export function dataPath(...parts: string[]): string {
  return existing(path.join(projectRoot(), "data", ...checkedParts("dataPath", parts)), "dataPath", parts, "data/ ships with the project");
}

/**
 * The data world's folder (`data/world`, or the folder named by
 * `$MLLM_LABS_WORLD`), or a dataset, split or file inside it:
 * `worldPath()`, `worldPath("scenes")`, `worldPath("videos", "test.jsonl")`.
 * Throws if it does not exist, saying how to make it.
 */
export function worldPath(...parts: string[]): string {
  const override = process.env[WORLD_ENV];
  const world = override ? path.resolve(override) : path.join(projectRoot(), "data", "world");
  if (override && !fs.existsSync(world)) throw new Error(`worldPath: $${WORLD_ENV} names ${world}, which does not exist`);
  return existing(path.join(world, ...checkedParts("worldPath", parts)), "worldPath", parts, override ? `$${WORLD_ENV} is ${world}` : "`npm run data` generates the world");
}

/** A sample file of `data/samples` (`samplePath("scene.png")`, `samplePath("chirp.wav")`); throws if it does not exist. */
export function samplePath(...parts: string[]): string {
  return existing(path.join(projectRoot(), "data", "samples", ...checkedParts("samplePath", parts)), "samplePath", parts, `the samples are ${listing(path.join(projectRoot(), "data", "samples"))}`);
}

/** A pretrained checkpoint's folder (`checkpointPath("vision")`), or a file in it; throws if it does not exist. */
export function checkpointPath(...parts: string[]): string {
  const name = parts[0] ?? "";
  return existing(
    path.join(projectRoot(), "data", "checkpoints", ...checkedParts("checkpointPath", parts)),
    "checkpointPath",
    parts,
    `\`npm run pretrain -- ${name || "NAME"}\` trains it; the checkpoints are ${listing(path.join(projectRoot(), "data", "checkpoints"))}`,
  );
}

function checkedParts(where: string, parts: string[]): string[] {
  for (const part of parts) {
    if (typeof part !== "string" || part === "") throw new TypeError(`${where}: each part must be a non-empty string, got ${JSON.stringify(part)}`);
    if (path.isAbsolute(part)) throw new Error(`${where}: "${part}" is absolute; give parts relative to the data folder`);
  }
  return parts;
}

function existing(file: string, where: string, parts: string[], hint: string): string {
  if (!fs.existsSync(file)) {
    const shown = path.relative(projectRoot(), file) || file;
    throw new Error(`${where}(${parts.map((p) => JSON.stringify(p)).join(", ")}): ${shown.startsWith("..") ? file : shown} does not exist (${hint})`);
  }
  return file;
}

function listing(folder: string): string {
  try {
    const names = fs.readdirSync(folder).sort();
    return names.length > 0 ? names.join(", ") : "none yet";
  } catch {
    return "missing";
  }
}
