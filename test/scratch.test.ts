/**
 * test/helpers/scratch.ts: the temporary folders tests make are fresh, under
 * `os.tmpdir()`, and gone (with what was written in them) once their suite ends.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { scratchFolders } from "./helpers/scratch";

describe("scratchFolders", () => {
  const made: string[] = [];
  const keep = process.env.MLLM_KEEP_SCRATCH;
  beforeAll(() => {
    delete process.env.MLLM_KEEP_SCRATCH;
  });
  afterAll(() => {
    if (keep !== undefined) process.env.MLLM_KEEP_SCRATCH = keep;
  });

  describe("a suite that makes folders", () => {
    const scratch = scratchFolders();

    it("makes a fresh folder under os.tmpdir() named with the prefix on each call", () => {
      const first = scratch("mllm-labs-scratch-");
      const second = scratch("mllm-labs-scratch-");
      made.push(first, second);
      expect(first).not.toBe(second);
      for (const folder of [first, second]) {
        expect(path.resolve(path.dirname(folder))).toBe(path.resolve(os.tmpdir()));
        expect(path.basename(folder)).toMatch(/^mllm-labs-scratch-.{6}$/);
        expect(fs.readdirSync(folder)).toEqual([]);
      }
      fs.writeFileSync(path.join(first, "file.txt"), "kept until the suite ends");
      fs.mkdirSync(path.join(second, "a", "b"), { recursive: true });
      fs.writeFileSync(path.join(second, "a", "b", "deep.txt"), "");
    });

    it("keeps the folders for the rest of the suite", () => {
      expect(made.map((folder) => fs.existsSync(folder))).toEqual([true, true]);
    });

    it("refuses a prefix that is empty or holds a path separator", () => {
      expect(() => scratch("")).toThrow(/the prefix must be a plain name .*got ""/);
      expect(() => scratch("a/b-")).toThrow(/the prefix must be a plain name .*got "a\/b-"/);
    });
  });

  it("removes them, with their contents, when that suite ends", () => {
    expect(made).toHaveLength(2);
    expect(made.filter((folder) => fs.existsSync(folder))).toEqual([]);
  });
});
