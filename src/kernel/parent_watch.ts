/**
 * The kernel exits when the process that started it is gone, as ipykernel's
 * `ParentPollerUnix` does: a runner killed with SIGKILL (or a crashed Jupyter
 * server) must not leave a kernel running.
 *
 * The runner (and Jupyter, through `JPY_PARENT_PID`) names its pid in the
 * environment. A worker thread polls the parent pid once a second, so a cell
 * stuck in a synchronous loop does not stop the check; when the parent has
 * changed, it kills the kernel's process group (the kernel and what its
 * cells started) when the kernel leads one, else the kernel alone.
 *
 * Reference: ipykernel/parentpoller.py
 * (https://github.com/ipython/ipykernel/blob/main/ipykernel/parentpoller.py).
 */
import * as path from "path";
import { Worker } from "worker_threads";

/** The prefix of the temporary folder in which the runner writes a kernel's connection file. */
export const RUNNER_FOLDER_PREFIX = "mllm-labs-kernel-";

/** Environment variables naming the parent to watch, first found wins. */
export const PARENT_PID_VARIABLES = ["MLLM_LABS_PARENT_PID", "JPY_PARENT_PID"];

const WATCHER = `
const { workerData } = require("worker_threads");
const fs = require("fs");
function processGroup() {
  try {
    // /proc/self/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after the last ")".
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return undefined;
  }
}
setInterval(() => {
  if (process.ppid === workerData.parent) return;
  if (workerData.cleanup) fs.rmSync(workerData.cleanup, { recursive: true, force: true });
  const group = processGroup();
  try {
    if (group === process.pid) process.kill(-group, "SIGKILL");
  } catch {}
  process.kill(process.pid, "SIGKILL");
}, workerData.intervalMs);
`;

/**
 * Starts watching the parent named in the environment; does nothing when none
 * is named or it is not this process's parent (already gone, or an unrelated
 * pid). When the parent goes, a connection file in a folder the runner made
 * for it (`mllm-labs-kernel-*`) is removed with its folder. Returns whether a
 * watch started.
 */
export function watchParent(connectionFile?: string, intervalMs = 1000): boolean {
  const variable = PARENT_PID_VARIABLES.find((name) => process.env[name]);
  const parent = variable ? Number(process.env[variable]) : NaN;
  if (!Number.isInteger(parent) || parent <= 1 || process.ppid !== parent) return false;
  const folder = connectionFile ? path.dirname(path.resolve(connectionFile)) : undefined;
  const cleanup = folder && path.basename(folder).startsWith(RUNNER_FOLDER_PREFIX) ? folder : undefined;
  const worker = new Worker(WATCHER, { eval: true, workerData: { parent, intervalMs, cleanup } });
  worker.unref();
  return true;
}
