/**
 * The sandbox one submission's kernel runs in: bubblewrap (user, mount, PID,
 * network, IPC and UTS namespaces), started as an unprivileged user id of its
 * own, with resource limits (prlimit) on address space, processes, file size
 * and open files.
 *
 * Inside, the file system holds only what the kernel needs, read-only: the
 * system's `/usr`, `/lib*`, `/bin`, `/etc/ld.so.cache`, and from the project
 * `package.json`, `dist/`, `display/`, `node_modules/`, `build/` (the native addon) and the
 * lab's data (`data/`). The submission's folder is a size-limited tmpfs at
 * `<project>/submission` (so that `../data` resolves as in `notebooks/`)
 * holding the exercise notebook (and read-only guards over `package.json` and
 * `node_modules/`); `/tmp` and `/dev/shm` are small tmpfs too; the root and
 * `/dev` are read-only. Nothing else
 * of the host is visible: not `solutions/`, not the grader's output, not other
 * submissions. The kernel talks to the grader over Unix sockets in a folder
 * (there is no network inside, not even the host's
 * loopback), bound at the same path as on the host.
 *
 * Reference: bubblewrap (https://github.com/containers/bubblewrap), and
 * nbgrader issue 483 ("autograding runs untrusted code with the grader's rights").
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** Limits of one sandbox. */
export interface SandboxLimits {
  /** Address space of each process, in MiB (RLIMIT_AS). Default: 4096 (lab 00 peaks at 2.4 GiB of address space, 0.74 GiB resident). */
  memoryMiB?: number;
  /** Processes and threads of the sandbox's user (RLIMIT_NPROC). Default: 256 (the kernel runs about 20 threads). */
  processes?: number;
  /** Size of the submission folder and of `/tmp` (tmpfs), and of any one file written (RLIMIT_FSIZE), in MiB. Default: 64. */
  diskMiB?: number;
  /** Open files per process (RLIMIT_NOFILE). Default: 1024. */
  openFiles?: number;
}

/** Limits with every default applied. */
export type ResolvedSandboxLimits = Required<SandboxLimits>;

export function resolveLimits(limits: SandboxLimits = {}): ResolvedSandboxLimits {
  const resolved = {
    memoryMiB: limits.memoryMiB ?? 4096,
    processes: limits.processes ?? 256,
    diskMiB: limits.diskMiB ?? 64,
    openFiles: limits.openFiles ?? 1024,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`sandbox limit ${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return resolved;
}

/** What a sandbox needs from the host. */
export interface SandboxSpec {
  /** The project root (package.json, dist/, node_modules/, build/). */
  projectRoot: string;
  /** Folders of lab data to show read-only at the same place under the project (e.g. `<project>/data`). */
  dataDirs: string[];
  /** The host folder holding the connection file and sockets, owned by `uid`; bound read-write at the same path. */
  connectionDir: string;
  /**
   * A host folder with a `package.json` (`{"private": true}`) and an empty
   * `node_modules/`, bound read-only over those names in the submission folder,
   * so that a submission cannot plant a package that shadows the library
   * (Node looks in the nearest `node_modules/` and `package.json` first).
   */
  guardDir: string;
  /** The exercise notebook to copy into the submission folder, and its name there. */
  notebook: { hostPath: string; name: string };
  /** The user and group id the sandbox runs as on the host (one per parallel job, so process limits are per job). */
  uid: number;
  limits: ResolvedSandboxLimits;
}

/** Where things are inside the sandbox. */
export function submissionDir(projectRoot: string): string {
  return path.join(projectRoot, "submission");
}

/** Why the sandbox cannot run here, or undefined when it can. */
export function sandboxUnavailable(): string | undefined {
  if (process.platform !== "linux") return `the grader's sandbox needs Linux (bubblewrap); this is ${process.platform}`;
  for (const tool of ["bwrap", "setpriv", "prlimit"]) {
    const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
    if (found.status !== 0) {
      return `"${tool}" is not installed: the grader's sandbox needs bubblewrap and util-linux (apt-get install bubblewrap util-linux)`;
    }
  }
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "the grader must run as root: it starts each sandbox as an unprivileged user id of its own";
  }
  const probe = spawnSync(
    "setpriv",
    ["--reuid=60999", "--regid=60999", "--clear-groups", "bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"],
    { encoding: "utf8" },
  );
  if (probe.status !== 0) return `bubblewrap cannot create namespaces here: ${(probe.stderr || `exit ${probe.status}`).trim()}`;
  return undefined;
}

function existing(paths: string[]): string[] {
  return paths.filter((p) => fs.existsSync(p));
}

/**
 * The command line that starts the lab kernel in the sandbox, with Jupyter's
 * `{connection_file}` placeholder replaced by the path inside.
 */
export function sandboxedKernelArgv(spec: SandboxSpec, nodePath = process.execPath): string[] {
  const { projectRoot, limits } = spec;
  const bytes = (mib: number) => String(mib * 1024 * 1024);
  const work = submissionDir(projectRoot);
  const readOnly = [
    ...existing(["/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"]),
    ...(fs.existsSync(nodePath) && !nodePath.startsWith("/usr/") ? [nodePath] : []),
    // display/ lets TypeScript's node10 resolution (tslab's) find "mllm-labs/display".
    ...existing(["package.json", "dist", "display", "node_modules", "build"].map((p) => path.join(projectRoot, p))),
    ...spec.dataDirs.filter((d) => fs.existsSync(d)),
  ];
  const argv = [
    "setpriv",
    `--reuid=${spec.uid}`,
    `--regid=${spec.uid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "prlimit",
    `--as=${bytes(limits.memoryMiB)}`,
    `--nproc=${limits.processes}`,
    `--fsize=${bytes(limits.diskMiB)}`,
    `--nofile=${limits.openFiles}`,
    `--core=0`,
    "--",
    "bwrap",
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--hostname",
    "sandbox",
    "--clearenv",
    "--setenv",
    "PATH",
    "/usr/local/bin:/usr/bin:/bin",
    "--setenv",
    "HOME",
    work,
    "--setenv",
    "TMPDIR",
    "/tmp",
    "--setenv",
    "LANG",
    "C.UTF-8",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--size",
    bytes(limits.diskMiB),
    "--tmpfs",
    "/dev/shm",
    "--remount-ro",
    "/dev",
    "--size",
    bytes(limits.diskMiB),
    "--tmpfs",
    "/tmp",
  ];
  for (const p of readOnly) argv.push("--ro-bind", p, p);
  argv.push(
    "--size",
    bytes(limits.diskMiB),
    "--tmpfs",
    work,
    "--ro-bind",
    spec.notebook.hostPath,
    path.join(work, spec.notebook.name),
    "--ro-bind",
    path.join(spec.guardDir, "package.json"),
    path.join(work, "package.json"),
    "--ro-bind",
    path.join(spec.guardDir, "node_modules"),
    path.join(work, "node_modules"),
    "--bind",
    spec.connectionDir,
    spec.connectionDir,
    // The sandbox's own root (a tmpfs bubblewrap builds) holds only mount points: read-only.
    "--remount-ro",
    "/",
    "--chdir",
    work,
    "--",
    nodePath,
    path.join(projectRoot, "dist", "src", "kernel", "main.js"),
    "--connection-file",
    "{connection_file}",
  );
  return argv;
}
