/**
 * Antialiased separable image resampling, as Pillow computes `Image.resize`
 * (and torchvision's `antialias=True` resize): each output pixel is a
 * normalised, filter-weighted sum over a support widened by the downscale
 * factor, first along rows, then along columns.
 *
 * Reference: Pillow `src/libImaging/Resample.c` (`precompute_coeffs`,
 * `normalize_coeffs_8bpc`, `ImagingResampleHorizontal_8bpc`); torchvision
 * `transforms/v2/functional/_geometry.py` `resize_image`.
 */

/** Pillow's resampling filters and their supports. */
const FILTERS = {
  /** Keys cubic with a = −0.5 (Pillow's BICUBIC). */
  bicubic: {
    support: 2,
    weight(x: number): number {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight(x: number): number {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
} as const;

export type ResampleFilter = keyof typeof FILTERS;

/** Per output index: first input index and normalised weights. */
interface Coefficients {
  start: Int32Array;
  weights: Float64Array[];
}

function coefficients(inSize: number, outSize: number, filter: ResampleFilter): Coefficients {
  const { support: baseSupport, weight } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = baseSupport * filterScale;
  const start = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const last = Math.min(Math.trunc(center + support + 0.5), inSize);
    const row = new Float64Array(last - first);
    let total = 0;
    for (let i = 0; i < row.length; i++) {
      row[i] = weight((i + first - center + 0.5) / filterScale);
      total += row[i];
    }
    if (total !== 0) for (let i = 0; i < row.length; i++) row[i] /= total;
    start[out] = first;
    weights.push(row);
  }
  return { start, weights };
}

/** Pillow's 8-bit fixed point: 22 fractional bits, rounded away from zero. */
const PRECISION_BITS = 32 - 8 - 2;

function fixedPoint(weights: Float64Array[]): Int32Array[] {
  return weights.map((row) => Int32Array.from(row, (w) => (w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS)))));
}

/** An image as interleaved channels, row-major. */
export interface PixelImage<T extends Uint8Array | Float32Array = Uint8Array | Float32Array> {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: T;
}

/**
 * Resizes an 8-bit image exactly as Pillow does: fixed-point weights, and
 * rounding to 8 bits after the horizontal pass and after the vertical pass.
 */
export function resizeUint8(image: PixelImage<Uint8Array>, width: number, height: number, filter: ResampleFilter = "bicubic"): PixelImage<Uint8Array> {
  const { channels } = image;
  const clip = (value: number) => (value < 0 ? 0 : value > 255 ? 255 : value);
  const half = 1 << (PRECISION_BITS - 1);
  let current = image;
  if (width !== image.width) {
    const { start, weights } = coefficients(image.width, width, filter);
    const fixed = fixedPoint(weights);
    const out = new Uint8Array(width * image.height * channels);
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < width; x++) {
        const k = fixed[x];
        for (let c = 0; c < channels; c++) {
          let sum = half;
          for (let i = 0; i < k.length; i++) sum += image.data[(y * image.width + start[x] + i) * channels + c] * k[i];
          out[(y * width + x) * channels + c] = clip(Math.floor(sum / (1 << PRECISION_BITS)));
        }
      }
    }
    current = { width, height: image.height, channels, data: out };
  }
  if (height !== current.height) {
    const { start, weights } = coefficients(current.height, height, filter);
    const fixed = fixedPoint(weights);
    const out = new Uint8Array(width * height * channels);
    for (let y = 0; y < height; y++) {
      const k = fixed[y];
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          let sum = half;
          for (let i = 0; i < k.length; i++) sum += current.data[((start[y] + i) * width + x) * channels + c] * k[i];
          out[(y * width + x) * channels + c] = clip(Math.floor(sum / (1 << PRECISION_BITS)));
        }
      }
    }
    current = { width, height, channels, data: out };
  }
  return current;
}

/**
 * Resizes in floating point (torchvision's antialiased resize of a float
 * tensor): no rounding between passes; values are not clamped.
 */
export function resizeFloat(image: PixelImage, width: number, height: number, filter: ResampleFilter = "bicubic"): PixelImage<Float32Array> {
  const { channels } = image;
  let data = Float32Array.from(image.data);
  let currentWidth = image.width;
  if (width !== image.width) {
    const { start, weights } = coefficients(image.width, width, filter);
    const out = new Float32Array(width * image.height * channels);
    for (let y = 0; y < image.height; y++)
      for (let x = 0; x < width; x++)
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let i = 0; i < weights[x].length; i++) sum += data[(y * currentWidth + start[x] + i) * channels + c] * weights[x][i];
          out[(y * width + x) * channels + c] = sum;
        }
    data = out;
    currentWidth = width;
  }
  if (height !== image.height) {
    const { start, weights } = coefficients(image.height, height, filter);
    const out = new Float32Array(width * height * channels);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let i = 0; i < weights[y].length; i++) sum += data[((start[y] + i) * width + x) * channels + c] * weights[y][i];
          out[(y * width + x) * channels + c] = sum;
        }
    data = out;
  }
  return { width, height, channels, data };
}
