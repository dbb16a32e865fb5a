/**
 * The folder of the mllm-labs package, found by walking up from this file to
 * the package.json named "mllm-labs" (the same from `src/` under vitest and
 * from `dist/src/` when built).
 */
import * as fs from "fs";
import * as path from "path";

let cached: string | undefined;

export function projectRoot(): string {
  if (cached) return cached;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        if (JSON.parse(fs.readFileSync(manifest, "utf8")).name === "mllm-labs") return (cached = dir);
      } catch {
        // not a readable manifest: keep walking
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`mllm-labs: no package.json named "mllm-labs" above ${__dirname}`);
  }
}

/** The package's version. */
export function packageVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(projectRoot(), "package.json"), "utf8")).version;
}
