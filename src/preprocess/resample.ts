/**
 * Antialiased separable image resampling, as Pillow computes `Image.resize`
 * for 8-bit images: each output pixel is a
 * normalised, filter-weighted sum over a support widened by the downscale
 * factor, first along rows, then along columns.
 *
 * Reference: Pillow `src/libImaging/Resample.c` (`precompute_coeffs`,
 * `normalize_coeffs_8bpc`, `ImagingResampleHorizontal_8bpc`).
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
  return weights.map((row) =>
    Int32Array.from(row, (w) =>
      w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS)),
    ),
  );
}

/** An image as interleaved channels, row-major. */
export interface PixelImage<T extends Uint8Array = Uint8Array> {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: T;
}

/**
 * One 8-bit pass along rows (horizontal) or columns, as Pillow's
 * `ImagingResampleHorizontal_8bpc` / `…Vertical_8bpc`: fixed-point weights,
 * rounded and clamped to 8 bits.
 */
function resamplePass(
  image: PixelImage<Uint8Array>,
  size: number,
  horizontal: boolean,
  filter: ResampleFilter,
): PixelImage<Uint8Array> {
  const { width, height, channels, data } = image;
  const { start, weights } = coefficients(horizontal ? width : height, size, filter);
  const fixed = fixedPoint(weights);
  const outWidth = horizontal ? size : width;
  const outHeight = horizontal ? height : size;
  const out = new Uint8Array(outWidth * outHeight * channels);
  const half = 1 << (PRECISION_BITS - 1);
  const step = horizontal ? channels : width * channels; // distance between neighbouring taps
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const k = fixed[horizontal ? x : y];
      const first = horizontal ? (y * width + start[x]) * channels : (start[y] * width + x) * channels;
      for (let c = 0; c < channels; c++) {
        let sum = half;
        for (let i = 0; i < k.length; i++) sum += data[first + i * step + c] * k[i];
        const value = Math.floor(sum / (1 << PRECISION_BITS));
        out[(y * outWidth + x) * channels + c] = value < 0 ? 0 : value > 255 ? 255 : value;
      }
    }
  }
  return { width: outWidth, height: outHeight, channels, data: out };
}

/** Resizes an 8-bit image exactly as Pillow does: the horizontal pass, then the vertical one. */
export function resizeUint8(
  image: PixelImage<Uint8Array>,
  width: number,
  height: number,
  filter: ResampleFilter = "bicubic",
): PixelImage<Uint8Array> {
  const wide = width === image.width ? image : resamplePass(image, width, true, filter);
  return height === wide.height ? wide : resamplePass(wide, height, false, filter);
}
