/**
 * The checks a lab runs after each part it builds: a condition with a clear
 * message, a tensor's shape with named dimensions, closeness with tolerances,
 * and the largest difference between two tensors. Every lab imports them from
 * `mllm-labs`; a notebook never defines its own.
 *
 * Reference: d2l's `#@save` helpers (`d2l/torch.py`, `check_shape`), the
 * tolerance rule of `torch.testing.assert_close` and `numpy.allclose`
 * (|actual − expected| ≤ atol + rtol·|expected|).
 */
import * as tf from "@tensorflow/tfjs";

/** A failed lab check; its message names the check and what was wrong. */
export class CheckError extends Error {
  constructor(
    /** The check's name, as given to {@link check}. */
    readonly check: string,
    /** What was wrong, with the values involved. */
    readonly detail: string,
  ) {
    super(`check failed: ${check}: ${detail}`);
    this.name = "CheckError";
  }
}

/**
 * Prints `✅ name: message` when `condition` holds; otherwise prints
 * `❌ name: message` and throws a {@link CheckError} carrying both, so the cell
 * (and a headless run of the lab) stops at the first failed check.
 */
export function check(name: string, condition: boolean, message: string): void {
  if (typeof condition !== "boolean") {
    throw new TypeError(`check("${name}"): the condition must be a boolean, got ${describeValue(condition)} (did you forget an await?)`);
  }
  console.log(`${condition ? "✅" : "❌"} ${name}: ${message}`);
  if (!condition) throw new CheckError(name, message);
}

/** Values {@link maxAbsDiff} and {@link checkClose} compare: a tensor, a number, or (nested) arrays of numbers. */
export type Numeric = tf.Tensor | number | number[] | number[][] | number[][][] | number[][][][] | Float32Array | Int32Array | Uint8Array;

/**
 * A tensor's expected shape: sizes in order, or an object whose keys name the
 * dimensions in order (`{ B: 2, T: 5, D: 16 }`, the message then says
 * `[B=2, T=5, D=16]`). A size of `null` accepts any size on that axis.
 */
export type ExpectedShape = readonly (number | null)[] | Readonly<Record<string, number | null>>;

/**
 * Checks `tensor.shape` against `expected` and prints it with the dimension
 * names, e.g. `✅ scores shape: [B=2, H=2, Tq=5, Tk=5]`; on a mismatch the
 * message names each wrong dimension (`Dh is 8, expected 4`) or the rank.
 * Returns nothing, so that a check ending a cell adds no output.
 */
export function checkShape(name: string, tensor: { readonly shape: readonly number[] }, expected: ExpectedShape): void {
  if (!tensor || !Array.isArray(tensor.shape)) {
    throw new TypeError(`checkShape("${name}"): expected a tensor (something with a shape), got ${describeValue(tensor)}`);
  }
  const dims = expectedDims(name, expected);
  const named = !Array.isArray(expected);
  const actual = [...tensor.shape];
  if (actual.length !== dims.length) {
    const wanted = dims.map(({ label, size }) => (named ? `${label}=${size ?? "any"}` : `${size ?? "any"}`));
    check(`${name} shape`, false, `got [${actual.join(", ")}] (rank ${actual.length}), expected [${wanted.join(", ")}] (rank ${dims.length})`);
  }
  const wrong = dims.flatMap(({ label, size }, axis) => (size !== null && actual[axis] !== size ? [`${label} is ${actual[axis]}, expected ${size}`] : []));
  const shown = dims.map(({ label }, axis) => (named ? `${label}=${actual[axis]}` : `${actual[axis]}`));
  check(`${name} shape`, wrong.length === 0, wrong.length === 0 ? `[${shown.join(", ")}]` : `got [${actual.join(", ")}]: ${wrong.join("; ")}`);
}

/**
 * max |a − b| over two tensors (or arrays) of the same shape, read
 * asynchronously (works on every backend). NaN when either holds a NaN;
 * matching infinities differ by 0. Throws when the shapes differ instead of
 * broadcasting one over the other.
 */
export async function maxAbsDiff(a: Numeric, b: Numeric): Promise<number> {
  const [difference, unmatched] = tf.tidy(() => {
    const [x, y] = [asTensor("maxAbsDiff", "a", a), asTensor("maxAbsDiff", "b", b)];
    sameShape("maxAbsDiff", x, y);
    if (x.size === 0) return [tf.scalar(0), tf.scalar(false, "bool")];
    const [xf, yf] = [x.toFloat(), y.toFloat()];
    const equal = xf.equal(yf); // [same shape]: true also for matching infinities
    const gap = tf.where(equal, tf.zerosLike(xf), xf.sub(yf).abs());
    return [gap.max(), tf.logicalOr(xf.isNaN(), yf.isNaN()).any()];
  });
  const [value, hasNaN] = [(await difference.data())[0], (await unmatched.data())[0]];
  tf.dispose([difference, unmatched]);
  return hasNaN ? NaN : value;
}

/** Tolerances of {@link checkClose}. */
export interface CloseArgs {
  /** Absolute tolerance. Default: 1e-5 (torch.testing's for float32). */
  readonly atol?: number;
  /** Relative tolerance, times |expected|. Default: 1.3e-6 (torch.testing's for float32). */
  readonly rtol?: number;
}

/** What {@link checkClose} measured. */
export interface CloseReport {
  /** max |actual − expected|. */
  readonly maxAbsDiff: number;
  /** Entries outside atol + rtol·|expected| (NaN in either counts as outside). */
  readonly mismatched: number;
  /** Entries compared. */
  readonly total: number;
}

/**
 * Checks that `actual` and `expected` have the same shape and that every entry
 * satisfies |actual − expected| ≤ atol + rtol·|expected| (NaN never does; an
 * infinity only matches itself). Prints the largest difference; on failure the
 * message also gives how many entries are off and the worst one, by index.
 */
export async function checkClose(name: string, actual: Numeric, expected: Numeric, args: CloseArgs = {}): Promise<CloseReport> {
  const atol = args.atol ?? 1e-5;
  const rtol = args.rtol ?? 1.3e-6;
  for (const [key, value] of [["atol", atol], ["rtol", rtol]] as const) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`checkClose("${name}"): ${key} must be a finite number ≥ 0, got ${value}`);
  }
  let shape: number[] = [];
  const [a, e] = tf.tidy(() => {
    const [x, y] = [asTensor(`checkClose("${name}")`, "actual", actual), asTensor(`checkClose("${name}")`, "expected", expected)];
    if (x.shape.length !== y.shape.length || x.shape.some((size, axis) => size !== y.shape[axis])) {
      check(`${name} shape`, false, `actual is [${x.shape.join(", ")}], expected [${y.shape.join(", ")}]`);
    }
    shape = x.shape;
    return [x.toFloat(), y.toFloat()];
  });
  let got: Float32Array, want: Float32Array;
  try {
    [got, want] = [(await a.data()) as Float32Array, (await e.data()) as Float32Array];
  } finally {
    tf.dispose([a, e]);
  }
  let maxDiff = 0;
  let mismatched = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < got.length; i++) {
    const [g, w] = [got[i], want[i]];
    const diff = g === w ? 0 : Math.abs(g - w); // equal infinities differ by 0, not NaN
    if (!(diff <= maxDiff)) maxDiff = diff; // NaN propagates
    const excess = Number.isNaN(diff) ? Infinity : diff - (atol + rtol * Math.abs(w));
    if (excess > 0) {
      mismatched++;
      if (excess > worstExcess) [worst, worstExcess] = [i, excess];
    }
  }
  const summary = `max |difference| = ${formatNumber(maxDiff)} (atol ${atol}, rtol ${rtol})`;
  const detail =
    mismatched === 0
      ? summary
      : `${mismatched} of ${got.length} entries differ; worst at [${unravel(worst, shape).join(", ")}]: ${formatNumber(got[worst])} vs expected ${formatNumber(want[worst])}; ${summary}`;
  check(name, mismatched === 0, detail);
  return { maxAbsDiff: maxDiff, mismatched, total: got.length };
}

/** The expected dimensions in order, each with its label: its name, or `axis i` for a plain array. */
function expectedDims(name: string, expected: ExpectedShape): { label: string; size: number | null }[] {
  if (typeof expected !== "object" || expected === null) {
    throw new TypeError(`checkShape("${name}"): the expected shape must be an array of sizes or an object of named sizes, got ${describeValue(expected)}`);
  }
  const entries: [string, unknown][] = Array.isArray(expected) ? expected.map((size, axis) => [`axis ${axis}`, size]) : Object.entries(expected);
  return entries.map(([label, size]) => {
    if (size !== null && !(Number.isInteger(size) && (size as number) >= 0)) {
      throw new TypeError(`checkShape("${name}"): the expected size of ${label} must be an integer ≥ 0 or null (any size), got ${describeValue(size)}`);
    }
    return { label, size: size as number | null };
  });
}

function asTensor(where: string, argument: string, value: Numeric): tf.Tensor {
  if (isTensor(value)) {
    if (value.isDisposed) throw new Error(`${where}: ${argument} is a disposed tensor (shape [${value.shape.join(", ")}])`);
    return value;
  }
  if (typeof value === "number" || Array.isArray(value) || ArrayBuffer.isView(value)) {
    try {
      return tf.tensor(value as tf.TensorLike);
    } catch (error) {
      throw new TypeError(`${where}: ${argument} is not a tensor or a rectangular array of numbers (${(error as Error).message})`);
    }
  }
  throw new TypeError(`${where}: ${argument} must be a tensor, a number or an array of numbers, got ${describeValue(value)}`);
}

function isTensor(value: unknown): value is tf.Tensor {
  // Duck-typed: a notebook may load its own copy of tfjs, whose Tensor class differs from the library's.
  return typeof value === "object" && value !== null && Array.isArray((value as tf.Tensor).shape) && typeof (value as tf.Tensor).dtype === "string" && "dataId" in value;
}

function sameShape(where: string, a: tf.Tensor, b: tf.Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((size, axis) => size !== b.shape[axis])) {
    throw new Error(`${where}: the shapes differ: [${a.shape.join(", ")}] vs [${b.shape.join(", ")}] (compare tensors of one shape; reshape first if that is what you mean)`);
  }
}

/** Flat index → index per axis (row-major). */
function unravel(flat: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length).fill(0);
  for (let axis = shape.length - 1, rest = flat; axis >= 0; axis--) {
    index[axis] = rest % shape[axis];
    rest = Math.floor(rest / shape[axis]);
  }
  return index;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value) || value === 0) return String(value);
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4 ? String(Number(value.toPrecision(6))) : value.toExponential(2);
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object") {
    const name = (value as object).constructor?.name;
    return typeof (value as Promise<unknown>).then === "function" ? "a Promise" : `${name ?? "an object"} ${JSON.stringify(value)?.slice(0, 60) ?? ""}`.trim();
  }
  return `${typeof value} ${JSON.stringify(value)}`;
}
