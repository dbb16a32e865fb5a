/**
 * The link between code running in a cell and the kernel that shows its
 * outputs. The kernel installs a host on `globalThis` (so that every copy of
 * the library, however it was loaded, finds the same one); the display
 * helpers call it. Outside a kernel there is no host and the helpers fall
 * back to text on stdout.
 *
 * tslab's own `display` API (`import * as tslab from "tslab"`) is wired to the
 * same host, so notebooks written for plain tslab keep working.
 */
import { wireTslabDisplay } from "./tslab_internals";

/** One display_data or update_display_data message's content. */
export interface DisplayRequest {
  /** Mime type → data (base64 for binary types, text or JSON otherwise). */
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** Names the output so that later updates can replace it in place. */
  displayId?: string;
  /** Replace the output that has `displayId` instead of adding one. */
  update?: boolean;
}

/** What the kernel offers to code in cells. */
export interface KernelHost {
  display(request: DisplayRequest): void;
  clearOutput(wait: boolean): void;
}

const KEY = Symbol.for("mllm-labs.kernel-host");

export const hostHook = {
  /** Installs the kernel's host (called once by the kernel at start). */
  install(host: KernelHost): void {
    (globalThis as Record<symbol, unknown>)[KEY] = host;
    // tslab's public `display` writes through a module-level hook (nothing to wire when tslab is not installed next to this copy).
    wireTslabDisplay((content, update) =>
      host.display({ data: content.data, metadata: content.metadata, displayId: content.transient?.display_id, update }),
    );
  },
  /** The running kernel's host, or undefined outside a kernel. */
  current(): KernelHost | undefined {
    return (globalThis as Record<symbol, unknown>)[KEY] as KernelHost | undefined;
  },
};
