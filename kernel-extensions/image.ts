/**
 * Images in the notebook: a tensor or a file shown as PNG.
 *
 * Tensors are [H, W, C] or [H, W] (C = 1, 3 or 4), float or int. `range`
 * states how values map to pixels: "unit" [0, 1], "byte" [0, 255],
 * "signed" [-1, 1], or "auto" (the tensor's own min..max).
 */
import * as tf from "@tensorflow/tfjs";
import { Rich } from "./rich";

/** Options for {@link image}. */
export interface ImageArgs {
  /** How values map to [0, 255]. Default: "unit" for float tensors, "byte" for int32. */
  range?: "unit" | "byte" | "signed" | "auto";
  /** Width to show it at in the notebook (pixels); the PNG keeps its own size. Default: natural size, at least 128. */
  width?: number;
  /** Text fallback / caption. */
  caption?: string;
  /** Scale tiny images up by an integer factor with nearest-neighbour (crisp pixels). Default: up to 128 px. */
  upscale?: number;
}

/** Encodes an [H, W, C] tensor as PNG bytes (reads with `await t.data()`: safe on every backend). */
export async function tensorToPng(tensor: tf.Tensor, args: ImageArgs = {}): Promise<{ png: Buffer; width: number; height: number; channels: number }> {
  const shape = tensor.shape;
  if (shape.length !== 2 && shape.length !== 3) {
    throw new Error(`image: expected a tensor of shape [H, W] or [H, W, C], got [${shape.join(", ")}]`);
  }
  const [height, width] = shape;
  const channels = shape.length === 3 ? shape[2] : 1;
  if (![1, 3, 4].includes(channels)) throw new Error(`image: expected 1, 3 or 4 channels, got ${channels} (shape [${shape.join(", ")}])`);
  const values = await tensor.data();
  const range = args.range ?? (tensor.dtype === "int32" ? "byte" : "unit");
  let low = 0;
  let high = 1;
  if (range === "byte") high = 255;
  else if (range === "signed") low = -1;
  else if (range === "auto") {
    low = Infinity;
    high = -Infinity;
    for (const v of values) {
      if (v < low) low = v;
      if (v > high) high = v;
    }
    if (!(high > low)) high = low + 1;
  }
  const pixels = Buffer.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Math.round(((values[i] - low) / (high - low)) * 255);
    pixels[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  const sharp = require("sharp");
  const scale = args.upscale ?? Math.max(1, Math.floor(128 / Math.max(width, height)));
  let pipeline = sharp(pixels, { raw: { width, height, channels } });
  if (scale > 1) pipeline = pipeline.resize(width * scale, height * scale, { kernel: "nearest" });
  const png: Buffer = await pipeline.png({ compressionLevel: 9 }).toBuffer();
  return { png, width: width * scale, height: height * scale, channels };
}

/** Shows a tensor or an image file (PNG, JPEG, WebP, GIF, SVG…) as PNG. */
export async function image(source: tf.Tensor | string, args: ImageArgs = {}): Promise<Rich> {
  let png: Buffer;
  let width: number;
  let height: number;
  let text: string;
  if (typeof source === "string") {
    const sharp = require("sharp");
    try {
      const { data, info } = await sharp(source).png().toBuffer({ resolveWithObject: true });
      png = data;
      width = info.width;
      height = info.height;
    } catch (error) {
      throw new Error(`image: cannot read "${source}" as an image: ${(error as Error).message}`);
    }
    text = `<image ${source} ${width}×${height}>`;
  } else {
    ({ png, width, height } = await tensorToPng(source, args));
    text = `<image [${source.shape.join(", ")}] ${source.dtype}>`;
  }
  const caption = args.caption ? `${args.caption} ` : "";
  return new Rich(
    { "text/plain": caption + text, "image/png": png.toString("base64") },
    { "image/png": { width: args.width ?? width, height: Math.round(((args.width ?? width) / width) * height) } },
  );
}
