/**
 * CLIP image preprocessing, as transformers' `CLIPImageProcessor` does it:
 * decode to RGB, resize so the shortest edge is `shortestEdge` (bicubic,
 * antialiased, Pillow's arithmetic), center-crop to `cropSize`, scale to
 * [0, 1], normalise with CLIP's mean and standard deviation, lay out as
 * [C, H, W].
 *
 * Reference: transformers `models/clip/image_processing_clip.py`,
 * `image_transforms.py` (`get_resize_output_image_size`, `center_crop`).
 * Images are decoded with sharp (libvips); the resize is ours so that it
 * matches Pillow's exactly.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { resizeUint8, type PixelImage, type ResampleFilter } from "./resample";
import { loadSharp } from "../util/sharp";

/** CLIP's normalisation constants (OpenAI CLIP; `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** Settings of {@link preprocessClipImage} (a `preprocessor_config.json`, camel-cased). */
export interface ClipImageProcessorConfig {
  /** Resize so the shorter side is this long. Default 224. */
  readonly shortestEdge: number;
  /** Center crop [height, width]. Default [224, 224]. */
  readonly cropSize: readonly [number, number];
  /** Per-channel mean. Default CLIP's. */
  readonly mean?: readonly number[];
  /** Per-channel standard deviation. Default CLIP's. */
  readonly std?: readonly number[];
  /** Default `bicubic`. */
  readonly resample?: ResampleFilter;
  /** Multiply 8-bit values by this. Default 1/255. */
  readonly rescaleFactor?: number;
  /**
   * Most pixels an image may have when decoded or once resized (before the
   * crop). Default {@link MAX_IMAGE_PIXELS}; a bigger image is refused with an
   * error instead of exhausting the process's memory.
   */
  readonly maxPixels?: number;
}

/** Default pixel limit for decoding and resizing: 2^25 (about 33.5 M pixels, 100 MB of 8-bit RGB). */
export const MAX_IMAGE_PIXELS = 2 ** 25;

/** Longest side a resize may produce (the resampler keeps per-row weights for every output row and column). */
export const MAX_IMAGE_SIDE = 2 ** 16;

function megapixels(pixels: number): string {
  return pixels >= 1e9 ? `${(pixels / 1e9).toFixed(1)} G pixels` : `${(pixels / 1e6).toFixed(1)} M pixels`;
}

/** Throws when an image of `width`×`height` is more than the limits allow; `what` says which image. */
export function checkImageSize(width: number, height: number, what: string, maxPixels = MAX_IMAGE_PIXELS): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`${what} is ${width}×${height}; expected a positive width and height`);
  }
  if (width * height > maxPixels || Math.max(width, height) > MAX_IMAGE_SIDE) {
    throw new Error(
      `${what} would be ${width}×${height} (${megapixels(width * height)}, ${megapixels(width * height * 3).replace("pixels", "bytes")} as RGB); ` +
        `the limit is ${megapixels(maxPixels)} and ${MAX_IMAGE_SIDE} pixels a side (maxPixels). Crop or pad an image this elongated first`,
    );
  }
}

/** The settings of a `preprocessor_config.json` (HF keys), with CLIP's defaults. */
export function clipImageProcessorFromHF(json: Record<string, any>): ClipImageProcessorConfig {
  const size = json.size ?? { shortest_edge: 224 };
  const crop = json.crop_size ?? { height: 224, width: 224 };
  const shortestEdge = typeof size === "number" ? size : size.shortest_edge;
  if (!Number.isInteger(shortestEdge))
    throw new Error(`CLIP preprocessing: size must give shortest_edge, got ${JSON.stringify(size)}`);
  const cropSize: [number, number] = typeof crop === "number" ? [crop, crop] : [crop.height, crop.width];
  return {
    shortestEdge,
    cropSize,
    mean: json.image_mean ?? CLIP_MEAN,
    std: json.image_std ?? CLIP_STD,
    rescaleFactor: json.rescale_factor ?? 1 / 255,
  };
}

/**
 * The settings for a fixture folder: its `preprocessor_config.json` when
 * present, else CLIP's defaults with the crop taken from the stored output
 * and the shortest edge equal to the crop's shorter side (as CLIP configures it).
 */
export function clipImageProcessorFromFixture(
  directory: string,
  cropHeight: number,
  cropWidth: number,
): ClipImageProcessorConfig {
  const file = path.join(directory, "preprocessor_config.json");
  if (fs.existsSync(file)) return clipImageProcessorFromHF(JSON.parse(fs.readFileSync(file, "utf8")));
  return { shortestEdge: Math.min(cropHeight, cropWidth), cropSize: [cropHeight, cropWidth] };
}

/** Decodes an image file (or encoded bytes) to 8-bit RGB; an image of more than `maxPixels` pixels is refused before it is decoded. */
export async function decodeRgb(source: string | Uint8Array, maxPixels = MAX_IMAGE_PIXELS): Promise<PixelImage<Uint8Array>> {
  const sharp = loadSharp();
  const name = typeof source === "string" ? source : "image data";
  if (typeof source === "string" && !fs.existsSync(source)) throw new Error(`image: ${source} does not exist`);
  try {
    const { data, info } = await sharp(source, { limitInputPixels: maxPixels })
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return {
      width: info.width,
      height: info.height,
      channels: 3,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (error) {
    if (/pixel limit/i.test((error as Error).message)) {
      throw new Error(
        `image: ${name} has more than ${megapixels(maxPixels)} (maxPixels); it was not decoded, to keep the process's memory (${(error as Error).message})`,
      );
    }
    throw new Error(`image: cannot decode ${name} as an image (${(error as Error).message})`);
  }
}

/** transformers' `get_resize_output_image_size` with `shortest_edge`: the longer side scales by truncation. */
export function shortestEdgeSize(width: number, height: number, shortestEdge: number): { width: number; height: number } {
  if (width <= height) return { width: shortestEdge, height: Math.trunc((shortestEdge * height) / width) };
  return { width: Math.trunc((shortestEdge * width) / height), height: shortestEdge };
}

/** A preprocessed image: [C, H, W] float values. */
export interface PreprocessedImage {
  readonly shape: readonly [number, number, number];
  readonly data: Float32Array;
}

/** One image file or decoded image → normalised [3, cropH, cropW] values. */
export async function preprocessClipImage(
  source: string | Uint8Array | PixelImage<Uint8Array>,
  config: ClipImageProcessorConfig,
): Promise<PreprocessedImage> {
  const maxPixels = config.maxPixels ?? MAX_IMAGE_PIXELS;
  const image = typeof source === "string" || source instanceof Uint8Array ? await decodeRgb(source, maxPixels) : source;
  const target = shortestEdgeSize(image.width, image.height, config.shortestEdge);
  checkImageSize(
    target.width,
    target.height,
    `CLIP preprocessing: the ${image.width}×${image.height} image resized to a shortest edge of ${config.shortestEdge}`,
    maxPixels,
  );
  const resized = resizeUint8(image, target.width, target.height, config.resample ?? "bicubic");
  const [cropHeight, cropWidth] = config.cropSize;
  if (cropHeight > resized.height || cropWidth > resized.width) {
    throw new Error(
      `CLIP preprocessing: crop ${cropHeight}×${cropWidth} is larger than the resized image ${resized.height}×${resized.width}`,
    );
  }
  // transformers' center_crop: top = (H − h) // 2, left = (W − w) // 2
  const top = Math.floor((resized.height - cropHeight) / 2);
  const left = Math.floor((resized.width - cropWidth) / 2);
  const mean = config.mean ?? CLIP_MEAN;
  const std = config.std ?? CLIP_STD;
  const scale = config.rescaleFactor ?? 1 / 255;
  const out = new Float32Array(3 * cropHeight * cropWidth);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < cropHeight; y++) {
      for (let x = 0; x < cropWidth; x++) {
        const value = resized.data[((top + y) * resized.width + left + x) * 3 + c];
        out[(c * cropHeight + y) * cropWidth + x] = (value * scale - mean[c]) / std[c];
      }
    }
  }
  return { shape: [3, cropHeight, cropWidth], data: out };
}

/** Several images → pixel values [B, 3, cropH, cropW] for a CLIP-style vision tower. */
export async function clipPixelValues(
  sources: readonly (string | Uint8Array)[],
  config: ClipImageProcessorConfig,
): Promise<tf.Tensor4D> {
  const images = [];
  for (const source of sources) images.push(await preprocessClipImage(source, config));
  const [C, H, W] = images[0].shape;
  const all = new Float32Array(images.length * C * H * W);
  images.forEach((image, index) => all.set(image.data, index * C * H * W));
  return tf.tensor4d(all, [images.length, C, H, W]);
}
