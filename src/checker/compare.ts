/**
 * Comparing outputs: text with the numbers inside it compared within a
 * tolerance, JSON structurally (numbers within the same tolerance), images by
 * a perceptual distance.
 */

/**
 * Tolerances for numbers: |got − want| ≤ atol + rtol·|want|. Integers (token
 * ids, counts, shapes) compare exactly unless `approxIntegers` is set: in
 * text, a number written without a decimal point or exponent in the
 * reference; in JSON, two integer values.
 */
export interface Tolerance {
  /** Relative tolerance. Default 1e-4. */
  rtol: number;
  /** Absolute tolerance. Default 1e-6. */
  atol: number;
  /** Compare integers within the tolerance too (cell tag `check-approx-integers`). Default false. */
  approxIntegers?: boolean;
}

/** A number written as an integer: digits with an optional sign, no decimal point, no exponent. */
const INTEGER_LITERAL = /^[-+]?\d+$/;

export const DEFAULT_TOLERANCE: Tolerance = { rtol: 1e-4, atol: 1e-6 };

/** One difference, in words. */
export interface Difference {
  /** Where, e.g. "number 3" or "$.data[2].y". */
  where: string;
  message: string;
}

/** Numbers (ints, decimals, exponents, NaN, ±Infinity) inside text. */
const NUMBER_IN_TEXT = /[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|NaN|[-+]?Infinity/g;

export function numbersClose(got: number, want: number, tolerance: Tolerance): boolean {
  if (Number.isNaN(got) || Number.isNaN(want)) return Number.isNaN(got) && Number.isNaN(want);
  if (!Number.isFinite(got) || !Number.isFinite(want)) return got === want;
  return Math.abs(got - want) <= tolerance.atol + tolerance.rtol * Math.abs(want);
}

/** Splits text into its skeleton (numbers replaced by `#`) and its numbers. */
export function splitNumbers(text: string): { skeleton: string; numbers: string[] } {
  const numbers: string[] = [];
  const skeleton = text.replace(NUMBER_IN_TEXT, (match, offset: number, whole: string) => {
    // A digit run glued to letters (an identifier like `conv2d`, `h1`) is part of the text.
    const before = whole[offset - 1];
    if (before && /[A-Za-z_]/.test(before)) return match;
    numbers.push(match);
    return "#";
  });
  return { skeleton, numbers };
}

function firstDifferingLine(got: string, want: string): string {
  const a = got.split("\n");
  const b = want.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `line ${i + 1}:\n      got:  ${JSON.stringify(a[i] ?? "<missing>")}\n      want: ${JSON.stringify(b[i] ?? "<missing>")}`;
    }
  }
  return "";
}

/**
 * Compares two texts: the text around the numbers must be equal, the numbers
 * within tolerance. Returns the differences (empty when they match).
 */
export function compareText(got: string, want: string, tolerance: Tolerance = DEFAULT_TOLERANCE): Difference[] {
  const a = splitNumbers(got);
  const b = splitNumbers(want);
  if (a.skeleton !== b.skeleton) {
    return [{ where: "text", message: `text differs, ${firstDifferingLine(got, want)}` }];
  }
  const differences: Difference[] = [];
  for (let i = 0; i < a.numbers.length; i++) {
    const x = Number(a.numbers[i]);
    const y = Number(b.numbers[i]);
    if (!tolerance.approxIntegers && INTEGER_LITERAL.test(b.numbers[i])) {
      if (!INTEGER_LITERAL.test(a.numbers[i]) || BigInt(a.numbers[i]) !== BigInt(b.numbers[i])) {
        differences.push({
          where: `number ${i + 1}`,
          message: `got ${a.numbers[i]}, want the integer ${b.numbers[i]} (integers compare exactly; tag the cell check-approx-integers to allow the tolerance)`,
        });
      }
      continue;
    }
    if (!numbersClose(x, y, tolerance)) {
      const rel = Math.abs(x - y) / Math.max(Math.abs(y), Number.MIN_VALUE);
      differences.push({
        where: `number ${i + 1}`,
        message: `got ${a.numbers[i]}, want ${b.numbers[i]} (relative difference ${rel.toExponential(2)} > rtol ${tolerance.rtol}, atol ${tolerance.atol})`,
      });
    }
  }
  return differences;
}

/** Compares two JSON values structurally; numbers within tolerance, strings exactly. */
export function compareJson(got: unknown, want: unknown, tolerance: Tolerance = DEFAULT_TOLERANCE, where = "$"): Difference[] {
  if (typeof want === "number" && typeof got === "number") {
    if (!tolerance.approxIntegers && Number.isInteger(want) && Number.isInteger(got)) {
      return got === want ? [] : [{ where, message: `got ${got}, want ${want} (integers compare exactly)` }];
    }
    return numbersClose(got, want, tolerance) ? [] : [{ where, message: `got ${got}, want ${want}` }];
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return [{ where, message: `got ${typeof got}, want an array` }];
    if (got.length !== want.length) return [{ where, message: `got ${got.length} items, want ${want.length}` }];
    return want.flatMap((item, i) => compareJson(got[i], item, tolerance, `${where}[${i}]`)).slice(0, 20);
  }
  if (want !== null && typeof want === "object") {
    if (got === null || typeof got !== "object" || Array.isArray(got))
      return [{ where, message: `got ${JSON.stringify(got)?.slice(0, 40)}, want an object` }];
    const keys = new Set([...Object.keys(want), ...Object.keys(got as object)]);
    const differences: Difference[] = [];
    for (const key of [...keys].sort()) {
      if (!(key in (got as object))) differences.push({ where: `${where}.${key}`, message: "missing" });
      else if (!(key in want)) differences.push({ where: `${where}.${key}`, message: "unexpected" });
      else
        differences.push(
          ...compareJson(
            (got as Record<string, unknown>)[key],
            (want as Record<string, unknown>)[key],
            tolerance,
            `${where}.${key}`,
          ),
        );
    }
    return differences.slice(0, 20);
  }
  return got === want ? [] : [{ where, message: `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}` }];
}

/** Options for {@link compareEncodedImages}. */
export interface ImageComparison {
  /** Largest allowed perceptual distance in [0, 1]. Default 0.02. */
  threshold: number;
}

/**
 * The perceptual distance between two encoded images (PNG, JPEG, GIF, WebP)
 * in [0, 1]: both are flattened on white, blurred slightly and scaled to
 * 64×64, then compared per pixel in luma and chroma (mean absolute
 * difference). Anti-aliasing and encoder differences stay well under 0.01;
 * a changed plot line or a different image scores far above 0.02.
 */
export async function perceptualDistance(
  got: Buffer,
  want: Buffer,
): Promise<{ distance: number; gotSize: string; wantSize: string }> {
  const sharp = require("sharp");
  const load = async (image: Buffer) => {
    const meta = await sharp(image).metadata();
    const pixels: Buffer = await sharp(image)
      .flatten({ background: "#ffffff" })
      .blur(1)
      .resize(64, 64, { fit: "fill", kernel: "cubic" })
      .removeAlpha()
      .raw()
      .toBuffer();
    return { pixels, size: `${meta.width}×${meta.height}` };
  };
  const [a, b] = await Promise.all([load(got), load(want)]);
  let total = 0;
  for (let i = 0; i < a.pixels.length; i += 3) {
    const [r1, g1, b1] = [a.pixels[i], a.pixels[i + 1], a.pixels[i + 2]];
    const [r2, g2, b2] = [b.pixels[i], b.pixels[i + 1], b.pixels[i + 2]];
    const luma = Math.abs(0.299 * (r1 - r2) + 0.587 * (g1 - g2) + 0.114 * (b1 - b2));
    const chroma = (Math.abs(r1 - r2) + Math.abs(g1 - g2) + Math.abs(b1 - b2)) / 3;
    total += 0.7 * luma + 0.3 * chroma;
  }
  return { distance: total / (a.pixels.length / 3) / 255, gotSize: a.size, wantSize: b.size };
}

/**
 * Compares two base64 images; an unreadable image is a difference, not a crash.
 * (Not the display helper `compareImages` of kernel-extensions, which shows images side by side.)
 */
export async function compareEncodedImages(
  gotBase64: string,
  wantBase64: string,
  options: ImageComparison = { threshold: 0.02 },
): Promise<Difference[]> {
  try {
    const { distance, gotSize, wantSize } = await perceptualDistance(
      Buffer.from(gotBase64, "base64"),
      Buffer.from(wantBase64, "base64"),
    );
    const differences: Difference[] = [];
    if (gotSize !== wantSize) differences.push({ where: "image size", message: `got ${gotSize}, want ${wantSize}` });
    if (distance > options.threshold) {
      differences.push({
        where: "image",
        message: `perceptual distance ${distance.toFixed(4)} > threshold ${options.threshold}`,
      });
    }
    return differences;
  } catch (error) {
    return [{ where: "image", message: `cannot decode: ${(error as Error).message}` }];
  }
}
