/**
 * Temporary folders for tests that are removed when their suite ends, so that
 * a test run leaves nothing in the system's temporary folder (`os.tmpdir()`,
 * which honours TMPDIR).
 *
 * Usage, at the top of a test file (or of a `describe`):
 *
 *     const scratch = scratchFolders();
 *     it("...", () => {
 *       const dir = scratch("mllm-labs-rel-");
 *     });
 *
 * Every folder made through `scratch` is removed in that suite's `afterAll`,
 * whether its tests passed or failed. With `MLLM_KEEP_SCRATCH=1` the folders
 * are kept for a look after a failure, and their paths printed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll } from "vitest";

/** Makes a fresh folder `<os.tmpdir()>/<prefix>XXXXXX`; returns its path. */
export type ScratchFolder = (prefix: string) => string;

/** Whether scratch folders are kept after the run (`MLLM_KEEP_SCRATCH=1`). */
function keepScratch(): boolean {
  return process.env.MLLM_KEEP_SCRATCH === "1";
}

/**
 * Registers an `afterAll` hook in the current suite (call it where hooks may be
 * registered: a test file's top level or a `describe` body) and returns a maker
 * of temporary folders that the hook removes.
 */
export function scratchFolders(): ScratchFolder {
  const made: string[] = [];
  afterAll(() => {
    if (keepScratch()) {
      if (made.length > 0) process.stdout.write(`MLLM_KEEP_SCRATCH=1: kept ${made.join(", ")}\n`);
      return;
    }
    for (const folder of made.splice(0)) fs.rmSync(folder, { recursive: true, force: true });
  });
  return (prefix: string) => {
    if (!prefix || prefix.includes(path.sep))
      throw new Error(`scratchFolders: the prefix must be a plain name such as "mllm-labs-run-", got ${JSON.stringify(prefix)}`);
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    made.push(folder);
    return folder;
  };
}

/** The committed checkpoints (data/checkpoints). */
const COMMITTED_CHECKPOINTS = path.join(__dirname, "..", "..", "data", "checkpoints");

/**
 * A scratch folder with the named committed checkpoints linked in, so that a run whose folder must sit beside its
 * neighbours (`../llava`, `../vision`, …) can write there without touching data/checkpoints.
 */
export function scratchCheckpoints(scratch: ScratchFolder, prefix: string, names: readonly string[]): string {
  const dir = scratch(prefix);
  for (const name of names) fs.symlinkSync(path.join(COMMITTED_CHECKPOINTS, name), path.join(dir, name));
  return dir;
}
