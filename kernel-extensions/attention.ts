/**
 * Attention, seen: weights over tokens as a heatmap (rows = queries,
 * columns = keys), and weights over image patches overlaid on the image.
 */
import { loadSharp } from "../src/util/sharp";
import * as tf from "@tensorflow/tfjs";
import { Rich } from "./rich";
import { heatmap, matrixRows } from "./plot";
import { filePixels, tensorPixels, type Pixels, type PixelRange } from "./image";
import { finiteRange, viridis } from "./colormap";

/** Options for {@link tokenAttention}. */
export interface TokenAttentionArgs {
  /** Tokens of the rows (queries) and columns (keys). */
  queryTokens?: readonly string[];
  keyTokens?: readonly string[];
  title?: string;
  /** Color range. Default [0, max]: weights are probabilities. */
  range?: [number, number];
}

/** A [Tq, Tk] attention matrix as a heatmap labelled with tokens. */
export async function tokenAttention(weights: tf.Tensor | number[][], args: TokenAttentionArgs = {}): Promise<Rich> {
  const rows = await matrixRows(weights, "tokenAttention");
  const top = Math.max(...rows.flat().filter(Number.isFinite));
  return heatmap(rows, {
    xLabels: args.keyTokens,
    yLabels: args.queryTokens,
    title: args.title ?? "attention",
    xLabel: "key",
    yLabel: "query",
    range: args.range ?? [0, top > 0 ? top : 1],
    annotate: false,
  });
}

/** Options for {@link patchAttention}. */
export interface PatchAttentionArgs {
  /** Patches per side; default √(number of weights). */
  grid?: number;
  /** How the image tensor's values map to pixels (as for images). Default "unit"; "clip" for model inputs. */
  range?: PixelRange;
  /** Image tensor layout. Default "hwc". */
  layout?: "hwc" | "chw";
  /** Opacity of the heat over the image, 0…1. Default 0.6. */
  alpha?: number;
  /** Side of the picture shown. Default: the image's, at least 192. */
  size?: number;
  caption?: string;
}

/**
 * Weights over image patches ([Np] or [grid, grid], row-major from the top
 * left, as ViT orders patches) drawn over the image: the image and the
 * overlay side by side, heat smoothly upsampled (bilinear) to the image.
 */
export async function patchAttention(
  image: tf.Tensor | string,
  weights: tf.Tensor | number[],
  args: PatchAttentionArgs = {},
): Promise<Rich> {
  const values = weights instanceof tf.Tensor ? Array.from(await weights.data()) : weights;
  if (!Array.isArray(values) || values.length === 0) throw new Error("patchAttention: no weights given");
  const grid = args.grid ?? Math.round(Math.sqrt(values.length));
  if (grid * grid !== values.length)
    throw new Error(`patchAttention: ${values.length} weights do not make a ${grid}×${grid} patch grid; pass grid`);
  const alpha = args.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`patchAttention: alpha must be in [0, 1], got ${alpha}`);
  const source: Pixels =
    typeof image === "string" ? await filePixels(image) : await tensorPixels(image, { range: args.range, layout: args.layout });
  const sharp = loadSharp();
  const size = args.size ?? Math.max(192, source.width);
  const base = await sharp(source.data, { raw: { width: source.width, height: source.height, channels: source.channels } })
    .resize(size, size, { kernel: "nearest", fit: "fill" })
    .removeAlpha()
    .toColourspace("srgb")
    .raw()
    .toBuffer();
  const [low, high] = finiteRange(values);
  const overlay = Buffer.from(base);
  for (let y = 0; y < size; y++) {
    // Bilinear sample of the grid at the pixel's center, in patch units.
    const gy = Math.min(grid - 1, Math.max(0, ((y + 0.5) / size) * grid - 0.5));
    const y0 = Math.floor(gy);
    const y1 = Math.min(grid - 1, y0 + 1);
    for (let x = 0; x < size; x++) {
      const gx = Math.min(grid - 1, Math.max(0, ((x + 0.5) / size) * grid - 0.5));
      const x0 = Math.floor(gx);
      const x1 = Math.min(grid - 1, x0 + 1);
      const [fy, fx] = [gy - y0, gx - x0];
      const v =
        (values[y0 * grid + x0] * (1 - fx) + values[y0 * grid + x1] * fx) * (1 - fy) +
        (values[y1 * grid + x0] * (1 - fx) + values[y1 * grid + x1] * fx) * fy;
      const heat = viridis((v - low) / (high - low));
      for (let c = 0; c < 3; c++)
        overlay[(y * size + x) * 3 + c] = Math.round(base[(y * size + x) * 3 + c] * (1 - alpha) + heat[c] * alpha);
    }
  }
  const gap = 8;
  const png = await sharp({ create: { width: 2 * size + gap, height: size, channels: 3, background: "#ffffff" } })
    .composite([
      { input: base, raw: { width: size, height: size, channels: 3 }, left: 0, top: 0 },
      { input: overlay, raw: { width: size, height: size, channels: 3 }, left: size + gap, top: 0 },
    ])
    .removeAlpha()
    .png({ compressionLevel: 9 })
    .toBuffer();
  let best = 0;
  values.forEach((v, k) => (v > values[best] ? (best = k) : 0));
  const text = `${args.caption ? `${args.caption}: ` : ""}<attention over ${grid}×${grid} patches; strongest patch (row ${Math.floor(best / grid)}, column ${best % grid}) ${values[best].toPrecision(3)}, weights ${low.toPrecision(3)}…${high.toPrecision(3)}>`;
  return new Rich(
    { "text/plain": text, "image/png": png.toString("base64") },
    { "image/png": { width: 2 * size + gap, height: size } },
  );
}
