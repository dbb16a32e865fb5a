/**
 * Images in the notebook: tensors or files shown as PNG, grids with captions
 * and side-by-side comparisons.
 *
 * Tensors are [H, W], [H, W, C] or, with `layout: "chw"`, [C, H, W]
 * (C = 1, 3 or 4), float or int; [B, …] batches become a grid. `range` states
 * how values map to pixels: "unit" [0, 1], "byte" [0, 255], "signed" [-1, 1],
 * "clip" (CLIP-normalised pixel values, mean/std undone), or "auto" (the
 * tensor's own min..max).
 */
import { loadSharp } from "../src/util/sharp";
import * as tf from "@tensorflow/tfjs";
import { escapeHtml, Rich } from "./rich";
import { CLIP_MEAN, CLIP_STD } from "../src/preprocess/clip_image";

/** How values map to [0, 255]. */
export type PixelRange = "unit" | "byte" | "signed" | "clip" | "auto";

/** Options for {@link image}. */
export interface ImageArgs {
  /** How values map to [0, 255]. Default: "unit" for float tensors, "byte" for int32. */
  range?: PixelRange;
  /** Where the channels are: "hwc" ([H, W, C], images) or "chw" ([C, H, W], model inputs). Default "hwc". */
  layout?: "hwc" | "chw";
  /** Width to show it at in the notebook (pixels); the PNG keeps its own size. Default: its own width. */
  width?: number;
  /** Text fallback / caption. */
  caption?: string;
  /** Scale tiny images up by an integer factor with nearest-neighbour (crisp pixels). Default: up to 128 px. */
  upscale?: number;
  /** Largest side kept; bigger images are scaled down, with a note. Default 1024. */
  maxSide?: number;
  /** Grid columns for a batch. Default: up to 8. */
  columns?: number;
}

/** 8-bit pixels, row-major, channels last. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  /** Something the viewer should know (values that are NaN or infinite, shown black). */
  note?: string;
}

const sharpModule = loadSharp;

/** The [H, W, C] pixels of one image tensor (reads with `await t.data()`: safe on every backend). */
export async function tensorPixels(tensor: tf.Tensor, args: Pick<ImageArgs, "range" | "layout"> = {}): Promise<Pixels> {
  const shape = tensor.shape;
  const chw = args.layout === "chw";
  if (shape.length !== 2 && shape.length !== 3) {
    throw new Error(`image: expected a tensor of shape ${chw ? "[C, H, W]" : "[H, W] or [H, W, C]"}, got [${shape.join(", ")}]`);
  }
  const [height, width] = shape.length === 2 ? shape : chw ? shape.slice(1) : shape;
  const channels = shape.length === 2 ? 1 : chw ? shape[0] : shape[2];
  if (channels !== 1 && channels !== 3 && channels !== 4)
    throw new Error(
      `image: expected 1, 3 or 4 channels, got ${channels} (shape [${shape.join(", ")}]${chw ? ", layout chw" : ""})`,
    );
  if (height === 0 || width === 0)
    throw new Error(`image: the tensor is empty (shape [${shape.join(", ")}]); there is nothing to show`);
  const values = await tensor.data();
  let nonFinite = 0;
  for (const v of values) if (!Number.isFinite(v)) nonFinite++;
  if (nonFinite === values.length) {
    throw new Error(
      `image: every value of the [${shape.join(", ")}] tensor is NaN or infinite (${values.length} values); there is no image to show`,
    );
  }
  const note = nonFinite > 0 ? `${nonFinite} of ${values.length} values are NaN or infinite, shown black` : undefined;
  const range = args.range ?? (tensor.dtype === "int32" ? "byte" : "unit");
  let low = 0;
  let high = 1;
  if (range === "byte") high = 255;
  else if (range === "signed") low = -1;
  else if (range === "auto") {
    low = Infinity;
    high = -Infinity;
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    if (!(high > low)) high = low + 1;
  } else if (range !== "unit" && range !== "clip")
    throw new Error(`image: range must be unit, byte, signed, clip or auto, got ${JSON.stringify(range)}`);
  if (range === "clip" && channels !== 3) throw new Error(`image: range "clip" needs 3 channels, got ${channels}`);
  const data = Buffer.alloc(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let v = values[chw ? (c * height + y) * width + x : (y * width + x) * channels + c];
        if (range === "clip") v = v * CLIP_STD[c] + CLIP_MEAN[c];
        else v = (v - low) / (high - low);
        const byte = Number.isFinite(v) ? Math.round(v * 255) : 0;
        data[(y * width + x) * channels + c] = byte < 0 ? 0 : byte > 255 ? 255 : byte;
      }
    }
  }
  return { data, width, height, channels: channels as 1 | 3 | 4, note };
}

/** Pixels of an image file (PNG, JPEG, WebP, GIF, SVG…), as RGB(A). */
export async function filePixels(file: string): Promise<Pixels> {
  try {
    const { data, info } = await sharpModule()(file).raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels as 1 | 3 | 4 };
  } catch (error) {
    throw new Error(`image: cannot read "${file}" as an image: ${(error as Error).message}`);
  }
}

/** PNG bytes of pixels, scaled up (nearest) by `upscale` or down to `maxSide`; says when it was scaled down. */
export async function pixelsToPng(
  pixels: Pixels,
  args: Pick<ImageArgs, "upscale" | "maxSide"> = {},
): Promise<{ png: Buffer; width: number; height: number; note?: string }> {
  const { width, height, channels } = pixels;
  const maxSide = args.maxSide ?? 1024;
  let pipeline = sharpModule()(pixels.data, { raw: { width, height, channels } });
  let [outW, outH] = [width, height];
  let note: string | undefined;
  if (Math.max(width, height) > maxSide) {
    const factor = maxSide / Math.max(width, height);
    [outW, outH] = [Math.max(1, Math.round(width * factor)), Math.max(1, Math.round(height * factor))];
    pipeline = pipeline.resize(outW, outH, { kernel: "lanczos3" });
    note = `scaled down from ${width}×${height} to ${outW}×${outH}`;
  } else {
    const scale = args.upscale ?? Math.max(1, Math.floor(128 / Math.max(width, height)));
    if (!(Number.isInteger(scale) && scale >= 1)) throw new Error(`image: upscale must be a positive integer, got ${scale}`);
    if (scale > 1) {
      [outW, outH] = [width * scale, height * scale];
      pipeline = pipeline.resize(outW, outH, { kernel: "nearest" });
    }
  }
  const png = await pipeline.png({ compressionLevel: 9 }).toBuffer();
  return { png, width: outW, height: outH, note };
}

/** Encodes an [H, W, C] tensor as PNG bytes. */
export async function tensorToPng(
  tensor: tf.Tensor,
  args: ImageArgs = {},
): Promise<{ png: Buffer; width: number; height: number; channels: number }> {
  const pixels = await tensorPixels(tensor, args);
  const { png, width, height } = await pixelsToPng(pixels, args);
  return { png, width, height, channels: pixels.channels };
}

/** A PNG as a rich output, shown `width` pixels wide. */
export function pngRich(png: Buffer, size: { width: number; height: number }, text: string, width = size.width): Rich {
  return new Rich(
    { "text/plain": text, "image/png": png.toString("base64") },
    { "image/png": { width, height: Math.round((width / size.width) * size.height) } },
  );
}

/** One picture for a grid or comparison: a tensor or a file, with an optional caption. */
export interface GridItem {
  image: tf.Tensor | string;
  caption?: string;
}

async function itemPixels(source: tf.Tensor | string, args: ImageArgs): Promise<Pixels> {
  return typeof source === "string" ? filePixels(source) : tensorPixels(source, args);
}

/** Shows a tensor or an image file as PNG; a [B, …] batch as a grid. */
export async function image(source: tf.Tensor | string, args: ImageArgs = {}): Promise<Rich> {
  if (typeof source !== "string" && !(source instanceof tf.Tensor))
    throw new Error(`image: expected a tensor or a file path, got ${typeof source}`);
  if (typeof source !== "string" && source.rank === 4) {
    const batch = tf.unstack(source);
    try {
      return await imageGrid(
        batch.map((t, k) => ({ image: t, caption: String(k) })),
        { ...args, caption: args.caption ?? `batch of ${batch.length}` },
      );
    } finally {
      tf.dispose(batch);
    }
  }
  const pixels = await itemPixels(source, args);
  const { png, width, height, note } = await pixelsToPng(pixels, args);
  const what =
    typeof source === "string"
      ? `<image ${source} ${pixels.width}×${pixels.height}>`
      : `<image [${source.shape.join(", ")}] ${source.dtype}>`;
  const notes = [pixels.note, note].filter((n) => n !== undefined);
  const text = (args.caption ? `${args.caption} ` : "") + what + (notes.length > 0 ? ` (${notes.join("; ")})` : "");
  return pngRich(png, { width, height }, text, args.width);
}

/** A grid of images with captions: HTML figures for the notebook, one PNG of the grid for static viewers. */
export async function imageGrid(items: GridItem[], args: ImageArgs = {}): Promise<Rich> {
  if (!Array.isArray(items) || items.length === 0) throw new Error("imageGrid: no images given");
  const pictures = await Promise.all(
    items.map(async (item, k) => {
      try {
        return await pixelsToPng(await itemPixels(item.image, args), { upscale: args.upscale, maxSide: args.maxSide ?? 256 });
      } catch (error) {
        throw new Error(`imageGrid: item ${k}${item.caption ? ` ("${item.caption}")` : ""}: ${(error as Error).message}`);
      }
    }),
  );
  const columns = args.columns ?? Math.min(8, items.length);
  if (!(Number.isInteger(columns) && columns >= 1))
    throw new Error(`imageGrid: columns must be a positive integer, got ${columns}`);
  const cellW = Math.max(...pictures.map((p) => p.width));
  const cellH = Math.max(...pictures.map((p) => p.height));
  const gap = 4;
  const rows = Math.ceil(items.length / columns);
  const gridW = columns * cellW + (columns - 1) * gap;
  const gridH = rows * cellH + (rows - 1) * gap;
  const png = await sharpModule()({ create: { width: gridW, height: gridH, channels: 3, background: "#ffffff" } })
    .composite(
      pictures.map((p, k) => ({
        input: p.png,
        left: (k % columns) * (cellW + gap),
        top: Math.floor(k / columns) * (cellH + gap),
      })),
    )
    .removeAlpha()
    .png({ compressionLevel: 9 })
    .toBuffer();
  const figures = pictures.map(
    (p, k) =>
      `<figure style="margin:0;text-align:center"><img src="data:image/png;base64,${p.png.toString("base64")}" width="${p.width}" style="image-rendering:pixelated"/>` +
      (items[k].caption
        ? `<figcaption style="font-size:12px;max-width:${Math.max(cellW, 96)}px">${escapeHtml(items[k].caption!)}</figcaption>`
        : "") +
      `</figure>`,
  );
  const markup =
    (args.caption ? `<div style="font-weight:bold;margin-bottom:4px">${escapeHtml(args.caption)}</div>` : "") +
    `<div style="display:grid;grid-template-columns:repeat(${columns},max-content);gap:8px;align-items:start">${figures.join("")}</div>`;
  const text =
    `${args.caption ? `${args.caption}: ` : ""}grid of ${items.length} images` +
    (items.some((i) => i.caption) ? ` (${items.map((i, k) => i.caption ?? String(k)).join(" | ")})` : "");
  return new Rich(
    { "text/plain": text, "text/html": markup, "image/png": png.toString("base64") },
    { "image/png": { width: gridW, height: gridH } },
  );
}

/** Images side by side, each with a label (e.g. "input", "reconstruction"). */
export async function compareImages(
  images: (tf.Tensor | string)[],
  labels: readonly string[],
  args: ImageArgs = {},
): Promise<Rich> {
  if (images.length !== labels.length) throw new Error(`compareImages: ${images.length} images but ${labels.length} labels`);
  return imageGrid(
    images.map((image, k) => ({ image, caption: labels[k] })),
    { ...args, columns: images.length },
  );
}
