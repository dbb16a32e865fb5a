/**
 * Tests that need a system package (Jupyter's conformance suite, espeak-ng,
 * Mesa's lavapipe, Chromium, the classic Notebook): on a machine without it
 * the test is skipped with one line naming the package and how to install
 * it, and the skip is recorded for the summary printed at the end of the run
 * (test/global_setup.ts). With `MLLM_REQUIRE_SYSTEM=1` (what `.ci/run` sets;
 * `MLLM_REQUIRE_BROWSER=1` is an older alias) nothing is skipped: the test
 * runs and fails, saying what is missing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findChromium } from "../browser/notebook_in_browser";

/** One system package a test needs. */
export interface SystemRequirement {
  /** The Debian package, e.g. "espeak-ng". */
  readonly name: string;
  /** How to install it. */
  readonly install: string;
  /** Whether it is present; a string is the reason it is not (checked once, lazily). */
  readonly probe: () => true | string;
}

/** Whether every skip must instead run (and fail): CI. */
export function systemRequired(): boolean {
  return process.env.MLLM_REQUIRE_SYSTEM === "1" || process.env.MLLM_REQUIRE_BROWSER === "1";
}

/** Where skips are recorded for the end-of-run summary (set by test/global_setup.ts). */
export const SKIP_LOG_VARIABLE = "MLLM_TEST_SKIP_LOG";

const probed = new Map<string, true | string>();

/**
 * The requirements that are missing, as one line each ("" when none). When
 * some are missing and skips are allowed, prints one line per package and
 * records it for the summary. `what` names the test.
 */
export function missingSystem(what: string, ...requirements: SystemRequirement[]): string[] {
  const missing: string[] = [];
  for (const requirement of requirements) {
    if (!probed.has(requirement.name)) probed.set(requirement.name, requirement.probe());
    const result = probed.get(requirement.name)!;
    if (result !== true) missing.push(`${requirement.name} (${result}; install: ${requirement.install})`);
  }
  if (missing.length > 0 && !systemRequired()) {
    for (const line of missing) {
      const text = `${what}: skipped, needs ${line}`;
      console.warn(text);
      const log = process.env[SKIP_LOG_VARIABLE];
      if (log) fs.appendFileSync(log, text + "\n");
    }
  }
  return missing;
}

/** Whether a test needing `requirements` is skipped here (missing, and not required). */
export function skipWithout(what: string, ...requirements: SystemRequirement[]): boolean {
  return missingSystem(what, ...requirements).length > 0 && !systemRequired();
}

const PYTHON = process.env.MLLM_TEST_PYTHON ?? "/usr/bin/python3";

export const JUPYTER_KERNEL_TEST: SystemRequirement = {
  name: "python3-jupyter-kernel-test",
  install: "apt-get install python3-jupyter-kernel-test",
  probe: () => {
    const result = spawnSync(PYTHON, ["-c", "import jupyter_kernel_test"], { encoding: "utf8" });
    return result.status === 0 || `${PYTHON} cannot import jupyter_kernel_test`;
  },
};

export const ESPEAK_NG: SystemRequirement = {
  name: "espeak-ng",
  install: "apt-get install espeak-ng",
  probe: () => spawnSync("espeak-ng", ["--version"], { encoding: "utf8" }).status === 0 || "espeak-ng is not on PATH",
};

export const CHROMIUM: SystemRequirement = {
  name: "chromium",
  install: "apt-get install chromium",
  probe: () => {
    return findChromium() !== undefined || "no Chromium found (or set CHROMIUM_PATH)";
  },
};

export const JUPYTER_NOTEBOOK: SystemRequirement = {
  name: "jupyter-notebook",
  install: "apt-get install jupyter-notebook",
  probe: () =>
    spawnSync("jupyter", ["notebook", "--version"], { encoding: "utf8" }).status === 0 ||
    "`jupyter notebook --version` does not run",
};

/** Mesa's lavapipe: a Vulkan driver on the CPU, so that Dawn finds a WebGPU adapter. */
export const LAVAPIPE: SystemRequirement = {
  name: "mesa-vulkan-drivers (lavapipe, Mesa ≥ 25)",
  install: "apt-get install -t bookworm-backports mesa-vulkan-drivers",
  probe: () => {
    const icds = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].flatMap((dir) =>
      fs.existsSync(dir) ? fs.readdirSync(dir) : [],
    );
    return icds.some((name) => /lvp/.test(name)) || "no lavapipe Vulkan driver (lvp_icd*.json) in /usr/share/vulkan/icd.d";
  },
};

/** Shell: makes the folder `$1` read-only by a bind mount onto itself, in the mount namespace the shell runs in. */
const MAKE_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"';

/** For `sh -c READ_ONLY_BIND_SCRIPT sh DIR COMMAND ARGS…`: makes DIR read-only, then runs the command there. */
export const READ_ONLY_BIND_SCRIPT = `${MAKE_READ_ONLY} && shift && exec "$@"`;

let namespace: { unshareFlags: string[] } | { reason: string } | undefined;

/**
 * How to run a command in a private mount namespace where it may bind-mount
 * (`unshare -m` as root; `unshare -rm` where only user namespaces are
 * allowed), checked once by making a folder read-only there; or why neither
 * works. The host's mounts are untouched (unshare makes the new namespace's
 * mounts private).
 */
export function privateMountNamespace(): { unshareFlags: string[] } | { reason: string } {
  if (namespace) return namespace;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mllm-labs-mount-probe-"));
  const probe = `${MAKE_READ_ONLY} && if touch "$1/written" 2>/dev/null; then echo "the folder stayed writable after a read-only bind mount" >&2; exit 1; fi`;
  const reasons: string[] = [];
  try {
    for (const flags of [["-m"], ["-rm"]]) {
      const result = spawnSync("unshare", [...flags, "sh", "-c", probe, "sh", dir], { encoding: "utf8" });
      if (result.status === 0) return (namespace = { unshareFlags: flags });
      if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
        return (namespace = { reason: "unshare is not on PATH" });
      const why = result.error ? result.error.message : (result.stderr.trim().split("\n")[0] ?? "") || `exit ${result.status}`;
      reasons.push(`unshare ${flags.join(" ")}: ${why}`);
    }
    return (namespace = { reason: reasons.join("; ") });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A read-only bind mount in a private mount namespace: how a test as root gets a folder it cannot write (root ignores permission bits). */
export const READ_ONLY_MOUNT: SystemRequirement = {
  name: "a read-only bind mount (util-linux's unshare and mount, mount or user namespaces)",
  install:
    "apt-get install util-linux mount; in a container, allow namespaces (e.g. docker run --cap-add SYS_ADMIN --security-opt seccomp=unconfined)",
  probe: () => {
    const found = privateMountNamespace();
    return "unshareFlags" in found || found.reason;
  },
};
