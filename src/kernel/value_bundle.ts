/**
 * The mime bundle of a cell's last value (the `execute_result`).
 *
 * A value that knows how to show itself implements `toMimeBundle()` (the
 * equivalent of IPython's `_repr_mimebundle_`); the display helpers of
 * `kernel-extensions/` return such objects. A tfjs tensor shows as its
 * `toString()`, which prints shape, dtype and values on backends that can read
 * synchronously. Everything else shows as Node's REPL shows it: `util.inspect`
 * with the REPL's options (`repl.writer.options`: `inspect.defaultOptions`
 * plus `showProxy`), so a string is quoted (`'42'` is not `42`) and a cell
 * that changes `util.inspect.defaultOptions` changes the display, as in the REPL.
 * (`null` and `undefined` show nothing: tslab reports no value for them.)
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

function isTensorLike(
  value: unknown,
): value is { shape: number[]; dtype: string; toString(verbose?: boolean): string; isDisposed?: boolean } {
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
  return { data: { "text/plain": replText(value) }, metadata: {} };
}

/** `value` as Node's REPL prints it (its default writer, `lib/repl.js`: `inspect(value, { ...inspect.defaultOptions, showProxy: true })`). */
export function replText(value: unknown): string {
  return inspect(value, { ...inspect.defaultOptions, showProxy: true });
}
