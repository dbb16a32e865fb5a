/**
 * Benchmark of the lab kernel: start time (process start to a kernel_info
 * reply) and round trip per trivial cell (`1 + 1`), next to tslab's own
 * kernel, both driven by a plain nbclient (Python's jupyter_client), and the
 * lab kernel driven by the project's Node runner client.
 * Needs the project built; nbclient rows need /usr/bin/python3 with nbclient
 * (Debian python3-nbclient) and are skipped with a note otherwise.
 */
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const root = path.resolve(__dirname, "..");
const { KernelClient } = require(path.join(root, "dist", "src", "runner", "kernel_client.js"));
const { kernelArgv, writeKernelspec } = require(path.join(root, "dist", "src", "kernel", "kernelspec.js"));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function nodeClient(repeats, cells) {
  const start = [];
  const cell = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const client = await KernelClient.start({ argv: kernelArgv(root), cwd: root });
    const t1 = performance.now();
    for (let i = 0; i < cells; i++) await client.execute("1 + 1");
    const t2 = performance.now();
    await client.shutdown();
    start.push(t1 - t0);
    cell.push((t2 - t1) / cells);
  }
  return { start_ms: start, cell_ms: cell };
}

function nbclient(kernelName, jupyterPath, repeats, cells) {
  const result = spawnSync(
    "/usr/bin/python3",
    [path.join(__dirname, "kernel_nbclient.py"), kernelName, String(cells), String(repeats)],
    {
      encoding: "utf8",
      env: { ...process.env, JUPYTER_PATH: jupyterPath },
      cwd: root,
      timeout: 600_000,
    },
  );
  if (result.status !== 0) return { error: (result.stderr || result.error?.message || "failed").trim().split("\n").pop() };
  return JSON.parse(result.stdout.trim().split("\n").pop());
}

/** Writes a kernelspec for plain tslab (no preload, tslab's own server) in a temporary JUPYTER_PATH. */
function tslabKernelspec() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mllm-labs-bench-"));
  const spec = path.join(dir, "kernels", "tslab");
  fs.mkdirSync(spec, { recursive: true });
  fs.writeFileSync(
    path.join(spec, "kernel.json"),
    JSON.stringify({
      argv: [
        process.execPath,
        path.join(root, "node_modules", "tslab", "bin", "tslab"),
        "kernel",
        "--config-path",
        "{connection_file}",
      ],
      display_name: "tslab",
      language: "typescript",
    }),
  );
  return dir;
}

async function run({ repeats = 3, cells = 30 } = {}) {
  writeKernelspec(root);
  const rows = [];
  const add = (kernel, client, measured) => {
    if (measured.error) {
      console.log(`  ${kernel} with ${client}: skipped (${measured.error})`);
      return;
    }
    rows.push({ name: "kernel", kernel, client, start_ms: median(measured.start_ms), cell_ms: median(measured.cell_ms) });
  };
  const tslabPath = tslabKernelspec();
  try {
    add("tslab", "nbclient", nbclient("tslab", tslabPath, repeats, cells));
    add("mllm-labs", "nbclient", nbclient("mllm-labs", path.join(root, ".jupyter"), repeats, cells));
    add("mllm-labs", "mllm-labs runner", await nodeClient(repeats, cells));
  } finally {
    // The temporary kernelspec goes whether the measurements finished or failed.
    fs.rmSync(tslabPath, { recursive: true, force: true });
  }
  const reference = rows.find((r) => r.kernel === "tslab");
  for (const row of rows) {
    row.start_ratio = reference ? row.start_ms / reference.start_ms : null;
    row.ratio = reference ? row.cell_ms / reference.cell_ms : null;
  }
  console.log(
    `\nKernel start and round trip per trivial cell (median of ${repeats} runs, ${cells} cells each; ratios against tslab with nbclient)`,
  );
  console.log("kernel      client             start ms   ×tslab   cell ms   ×tslab");
  for (const r of rows) {
    const f = (x, d = 1) => (x === null ? "   -" : x.toFixed(d));
    console.log(
      `${r.kernel.padEnd(11)} ${r.client.padEnd(18)} ${f(r.start_ms).padStart(8)} ${f(r.start_ratio, 2).padStart(8)} ${f(r.cell_ms, 2).padStart(9)} ${f(r.ratio, 2).padStart(8)}`,
    );
  }
  console.log("");
  for (const r of rows) {
    console.log(
      JSON.stringify({ ...r, start_ms: +r.start_ms.toFixed(1), cell_ms: +r.cell_ms.toFixed(3), ms: +r.cell_ms.toFixed(3) }),
    );
  }
}

module.exports = { run };
