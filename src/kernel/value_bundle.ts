/**
 * The mime bundle of a cell's last value (the `execute_result`).
 *
 * A value that knows how to show itself implements `toMimeBundle()` (the
 * equivalent of IPython's `_repr_mimebundle_`); the display helpers of
 * `kernel-extensions/` return such objects. Everything else is shown as
 * Node's `util.inspect` text, and a tfjs tensor by its `toString()`, which
 * prints shape, dtype and values on backends that can read synchronously.
 */
import { inspect } from "util";

/** A Jupyter mime bundle with its metadata. */
export interface MimeBundle {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/** Something that renders itself as a mime bundle. */
export interface Displayable {
  toMimeBundle(): MimeBundle | Record<string, unknown>;
}

export function isDisplayable(value: unknown): value is Displayable {
  return typeof value === "object" && value !== null && typeof (value as Displayable).toMimeBundle === "function";
}

function isTensorLike(value: unknown): value is { shape: number[]; dtype: string; toString(verbose?: boolean): string; isDisposed?: boolean } {
  return (
    typeof value === "object" &&
    value !== null &&
    Array.isArray((value as { shape?: unknown }).shape) &&
    typeof (value as { dtype?: unknown }).dtype === "string" &&
    typeof (value as { dataId?: unknown }).dataId === "object"
  );
}

/** The bundle for any value: always has `text/plain`. */
export function valueBundle(value: unknown): MimeBundle {
  if (isDisplayable(value)) {
    const bundle = value.toMimeBundle();
    if ("data" in bundle && typeof bundle.data === "object") {
      return { data: bundle.data as Record<string, unknown>, metadata: (bundle.metadata as Record<string, unknown>) ?? {} };
    }
    return { data: bundle as Record<string, unknown>, metadata: {} };
  }
  if (isTensorLike(value)) {
    let text: string;
    if (value.isDisposed) {
      text = `Tensor (disposed) shape [${value.shape.join(", ")}] ${value.dtype}`;
    } else {
      try {
        text = value.toString();
      } catch {
        // Backends without synchronous reads (WebGPU in Node) cannot print values.
        text = `Tensor shape [${value.shape.join(", ")}] ${value.dtype} (read it with await t.data() to see values)`;
      }
    }
    return { data: { "text/plain": text }, metadata: {} };
  }
  if (typeof value === "string") {
    return { data: { "text/plain": value }, metadata: {} };
  }
  return { data: { "text/plain": inspect(value, { depth: 4, maxArrayLength: 100, breakLength: 100 }) }, metadata: {} };
}
