/**
 * Looks for a WebGPU adapter in a child process, so that Dawn's and Vulkan's
 * start-up warnings (written straight to file descriptor 2 by native code,
 * e.g. "maxDynamicUniformBuffersPerPipelineLayout artificially reduced") stay
 * out of this process's stderr when the adapter turns out to be a software
 * rasteriser the engine will not use anyway. Only a hardware adapter (or an
 * explicit request for WebGPU) loads Dawn in this process.
 */
import { execFile } from "child_process";

/** What the child found. */
export interface AdapterProbe {
  /** An adapter was found. */
  found: boolean;
  /** It is a software rasteriser (lavapipe, llvmpipe, SwiftShader). */
  software: boolean;
  /** vendor, architecture and description, for messages. */
  description: string;
}

const SCRIPT = `
const { create, globals } = require(process.argv[1]);
Object.assign(globalThis, globals);
create([]).requestAdapter({ powerPreference: "high-performance" }).then(
  (adapter) => {
    const info = (adapter && adapter.info) || {};
    process.stdout.write(JSON.stringify({ found: Boolean(adapter), info: { vendor: info.vendor, architecture: info.architecture, description: info.description, device: info.device } }));
    process.exit(0);
  },
  () => { process.stdout.write(JSON.stringify({ found: false, info: {} })); process.exit(0); },
);
`;

/** Whether an adapter description names a software rasteriser. */
export function isSoftwareAdapter(info: { architecture?: string; description?: string; device?: string }): boolean {
  return /llvmpipe|lavapipe|swiftshader/i.test(`${info.architecture ?? ""} ${info.description ?? ""} ${info.device ?? ""}`);
}

/**
 * Probes for an adapter in a child Node process whose stderr is discarded.
 * Resolves undefined when the probe itself fails (no `webgpu` package, a
 * crash, 30 s without an answer): the caller then decides as before.
 */
export function probeAdapterQuietly(timeoutMs = 30_000): Promise<AdapterProbe | undefined> {
  let dawn: string;
  try {
    dawn = require.resolve("webgpu");
  } catch {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    execFile(process.execPath, ["-e", SCRIPT, dawn], { timeout: timeoutMs, encoding: "utf8" }, (error, stdout) => {
      try {
        const { found, info } = JSON.parse(stdout);
        const description = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU adapter";
        resolve({ found: Boolean(found), software: isSoftwareAdapter(info), description });
      } catch {
        resolve(error ? undefined : undefined);
      }
    });
  });
}
