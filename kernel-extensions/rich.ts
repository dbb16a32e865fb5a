/**
 * Rich outputs: values that show themselves in the notebook.
 *
 * A {@link Rich} is a mime bundle with a text fallback. As a cell's last
 * value it becomes the cell's `execute_result`; `display(rich)` shows it
 * anywhere in a cell; `clearOutput()` empties the cell's outputs. Outside a
 * kernel (a plain Node script), `display` prints the text fallback.
 */
import type { DisplayRequest } from "../src/kernel/host";
import { hostHook } from "../src/kernel/host";

/** Mime type → content: text for text types, base64 for binary ones, objects for JSON types. */
export type MimeData = Record<string, unknown> & { "text/plain": string };

export class Rich {
  constructor(
    /** The bundle; always has a `text/plain` fallback. */
    readonly data: MimeData,
    /** Per-mime metadata (e.g. `{"image/png": {width: 256}}`). */
    readonly metadata: Record<string, unknown> = {},
  ) {}

  /** The kernel's hook for a cell's last value. */
  toMimeBundle(): { data: MimeData; metadata: Record<string, unknown> } {
    return { data: this.data, metadata: this.metadata };
  }

  toString(): string {
    return this.data["text/plain"];
  }
}

/** Options for {@link display}. */
export interface DisplayOptions {
  /** Names the output so that {@link display} with `update: true` can replace it in place. */
  displayId?: string;
  /** Replace the output with `displayId` instead of adding one. Default: false. */
  update?: boolean;
}

/** Shows a rich output now (or prints its text outside a kernel). */
export function display(rich: Rich, options: DisplayOptions = {}): void {
  const host = hostHook.current();
  if (!host) {
    console.log(rich.data["text/plain"]);
    return;
  }
  const { data, metadata } = rich.toMimeBundle();
  const request: DisplayRequest = { data, metadata, displayId: options.displayId, update: options.update };
  host.display(request);
}

/** Clears the cell's outputs; with `wait`, just before the next output arrives (no flicker). */
export function clearOutput(wait = false): void {
  hostHook.current()?.clearOutput(wait);
}

/** HTML text as a rich output. */
export function html(markup: string, text = markup.replace(/<[^>]+>/g, "")): Rich {
  return new Rich({ "text/plain": text, "text/html": markup });
}

/** Escapes text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
