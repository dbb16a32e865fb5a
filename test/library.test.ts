/** The library as the notebooks see it: compiles under tslab's TypeScript, imports lazily, reads tensors asynchronously. */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { projectRoot } from "../src/util/project_root";

const root = projectRoot();

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith(".ts") ? [full] : [];
  });
}

describe("library", () => {
  it("compiles under tslab's own TypeScript 5.0.4", () => {
    const ts = require("@tslab/typescript-for-tslab");
    expect(ts.version).toBe("5.0.4");
    const files = [...sourceFiles(path.join(root, "src")), ...sourceFiles(path.join(root, "kernel-extensions"))];
    const program = ts.createProgram(files, {
      target: ts.ScriptTarget.ES2020,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.NodeJs,
      strict: true,
      esModuleInterop: true,
      skipLibCheck: true,
      noEmit: true,
      types: ["node"],
      typeRoots: [path.join(root, "node_modules", "@types")],
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map((d: any) => `${d.file?.fileName ?? ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    expect(diagnostics).toEqual([]);
  }, 120_000);

  it("never reads tensors synchronously (dataSync/arraySync fail on WebGPU in Node)", () => {
    const offenders = [...sourceFiles(path.join(root, "src")), ...sourceFiles(path.join(root, "kernel-extensions"))]
      .flatMap((file) =>
        fs
          .readFileSync(file, "utf8")
          .split("\n")
          .map((line, i) => ({ file, line, i })),
      )
      .filter(
        ({ line }) =>
          /\.(dataSync|arraySync|bufferSync)\(/.test(line) && !line.trim().startsWith("*") && !line.trim().startsWith("//"),
      )
      .map(({ file, i }) => `${path.relative(root, file)}:${i + 1}`);
    expect(offenders).toEqual([]);
  });

  it("imports without loading sharp, zeromq or a GPU backend", () => {
    const script = `require(${JSON.stringify(path.join(root, "dist", "src", "index.js"))}); require(${JSON.stringify(path.join(root, "dist", "kernel-extensions", "index.js"))});
      const loaded = Object.keys(require.cache);
      const heavy = loaded.filter((f) => /node_modules[\\/](sharp|zeromq|webgpu|@tensorflow[\\/]tfjs-node|tslab)[\\/]/.test(f));
      console.log(JSON.stringify(heavy));`;
    const result = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout.trim().split("\n").pop()!)).toEqual([]);
  });

  it("resolves by package name from a notebook folder", () => {
    const result = spawnSync(
      process.execPath,
      ["-e", 'console.log(typeof require("mllm-labs").GPT, typeof require("mllm-labs/display").image)'],
      {
        cwd: path.join(root, "notebooks"),
        encoding: "utf8",
      },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("function function");
  });
});
