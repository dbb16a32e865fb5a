/**
 * The repository's own text: no tracked file keeps a merge's conflict markers (a README once did, and no other test reads
 * prose).
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");
const TEXT = /\.(ts|js|cjs|mjs|json|md|py|sh|yml|yaml|txt|ipynb|css|html)$/;

describe("repository", () => {
  it("no tracked text file holds merge conflict markers", () => {
    const files = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" })
      .split("\n")
      .filter((file) => TEXT.test(file) && !file.startsWith("data/") && fs.existsSync(path.join(ROOT, file)));
    expect(files.length).toBeGreaterThan(100);
    const marked = files.filter((file) => /^(<{7}|>{7}) /m.test(fs.readFileSync(path.join(ROOT, file), "utf8")));
    expect(marked, `files with conflict markers: ${marked.join(", ")}`).toEqual([]);
  });
});
