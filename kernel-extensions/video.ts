/**
 * Video in the notebook: a frame stack as an animated image (GIF or WebP,
 * written by sharp, looping) beside its filmstrip. The filmstrip is also the
 * output's static PNG, so saved notebooks and the checker see every frame.
 */
import { loadSharp } from "../src/util/sharp";
import * as tf from "@tensorflow/tfjs";
import { escapeHtml, Rich } from "./rich";
import { filePixels, tensorPixels, type Pixels, type PixelRange } from "./image";

/** Options for {@link video}. */
export interface VideoArgs {
  /** Frames per second of the animation. Default 4. */
  fps?: number;
  /** Animated format. Default "gif" (every front end plays it); "webp" is smaller and full-color. */
  format?: "gif" | "webp";
  /** How values map to pixels (as for images). Default "unit" for floats, "byte" for int32. */
  range?: PixelRange;
  /** Tensor layout: [F, H, W, C] ("hwc") or [F, C, H, W] ("chw", model inputs). Default "hwc". */
  layout?: "hwc" | "chw";
  /** For a filmstrip file: how many frames it holds, left to right. */
  frames?: number;
  /** Scale small frames up by an integer factor (nearest). Default: up to 128 px. */
  upscale?: number;
  /** Most frames shown; longer videos keep evenly spaced frames, with a note. Default 64. */
  maxFrames?: number;
  caption?: string;
}

/** Frames of a [F, …] tensor or of a filmstrip image (frames side by side). */
async function framePixels(source: tf.Tensor | string, args: VideoArgs): Promise<Pixels[]> {
  if (typeof source === "string") {
    const strip = await filePixels(source);
    const count = args.frames;
    if (!(Number.isInteger(count) && count! > 0 && strip.width % count! === 0)) {
      throw new Error(
        `video: ${source} is ${strip.width}×${strip.height}; give frames (a count that divides the width ${strip.width}), got ${count}`,
      );
    }
    const width = strip.width / count!;
    return Array.from({ length: count! }, (_, f) => {
      const data = Buffer.alloc(width * strip.height * strip.channels);
      for (let y = 0; y < strip.height; y++)
        strip.data.copy(
          data,
          y * width * strip.channels,
          (y * strip.width + f * width) * strip.channels,
          (y * strip.width + (f + 1) * width) * strip.channels,
        );
      return { data, width, height: strip.height, channels: strip.channels };
    });
  }
  if (!(source instanceof tf.Tensor) || (source.rank !== 4 && source.rank !== 3)) {
    throw new Error(
      `video: expected a [F, H, W, C] or [F, C, H, W] tensor (or [F, H, W]), got ${source instanceof tf.Tensor ? `shape [${source.shape.join(", ")}]` : typeof source}`,
    );
  }
  const frames = tf.unstack(source);
  try {
    const range = args.range ?? (source.dtype === "int32" ? "byte" : "unit");
    return await Promise.all(frames.map((frame) => tensorPixels(frame, { range, layout: args.layout })));
  } finally {
    tf.dispose(frames);
  }
}

/** An animated GIF or WebP of equally sized RGB(A) frames, looping. */
export async function animate(frames: Pixels[], fps = 4, format: "gif" | "webp" = "gif"): Promise<Buffer> {
  if (frames.length === 0) throw new Error("video: no frames");
  const { width, height, channels } = frames[0];
  frames.forEach((f, k) => {
    if (f.width !== width || f.height !== height || f.channels !== channels)
      throw new Error(`video: frame ${k} is ${f.width}×${f.height}×${f.channels}; frame 0 is ${width}×${height}×${channels}`);
  });
  if (!(fps > 0 && fps <= 50)) throw new Error(`video: fps must be in (0, 50], got ${fps}`);
  const sharp = loadSharp();
  const rgb = (f: Pixels) => {
    if (f.channels !== 1) return f.data;
    const out = Buffer.alloc(f.data.length * 3);
    for (let i = 0; i < f.data.length; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = f.data[i];
    return out;
  };
  const stacked = Buffer.concat(frames.map(rgb));
  const delay = frames.map(() => Math.round(1000 / fps));
  const image = sharp(stacked, {
    raw: { width, height: height * frames.length, channels: channels === 1 ? 3 : channels, pageHeight: height },
  });
  return format === "webp" ? image.webp({ delay, loop: 0, lossless: true }).toBuffer() : image.gif({ delay, loop: 0 }).toBuffer();
}

/** Shows a frame stack as an animation and a filmstrip. */
export async function video(source: tf.Tensor | string, args: VideoArgs = {}): Promise<Rich> {
  let frames = await framePixels(source, args);
  const total = frames.length;
  const maxFrames = args.maxFrames ?? 64;
  let note = "";
  if (total > maxFrames) {
    frames = Array.from({ length: maxFrames }, (_, k) => frames[Math.floor((k * total) / maxFrames)]);
    note = `${maxFrames} of ${total} frames, evenly spaced`;
  }
  const { width, height } = frames[0];
  const scale = args.upscale ?? Math.max(1, Math.floor(128 / Math.max(width, height)));
  const scaled = await Promise.all(frames.map((f) => scalePixels(f, scale)));
  const format = args.format ?? "gif";
  const animation = await animate(scaled, args.fps ?? 4, format);
  // Filmstrip: frames left to right with a 2-pixel white gap, at most 8 per row.
  const sharp = loadSharp();
  const across = Math.min(8, scaled.length);
  const [fw, fh] = [scaled[0].width, scaled[0].height];
  const stripW = across * fw + (across - 1) * 2;
  const stripH = Math.ceil(scaled.length / across) * (fh + 2) - 2;
  const strip = await sharp({ create: { width: stripW, height: stripH, channels: 3, background: "#ffffff" } })
    .composite(
      await Promise.all(
        scaled.map(async (f, k) => ({
          input: await sharp(f.data, { raw: { width: fw, height: fh, channels: f.channels } })
            .png()
            .toBuffer(),
          left: (k % across) * (fw + 2),
          top: Math.floor(k / across) * (fh + 2),
        })),
      ),
    )
    .removeAlpha()
    .png({ compressionLevel: 9 })
    .toBuffer();
  const what = typeof source === "string" ? source : `[${source.shape.join(", ")}] ${source.dtype}`;
  const text = `${args.caption ? `${args.caption}: ` : ""}<video ${what}, ${total} frames of ${width}×${height} at ${args.fps ?? 4} fps${note ? `; ${note}` : ""}>`;
  const markup =
    `<figure style="margin:0">${args.caption ? `<figcaption>${escapeHtml(args.caption)}</figcaption>` : ""}` +
    `<div style="display:flex;gap:12px;align-items:flex-start"><img class="mllm-video" src="data:image/${format};base64,${animation.toString("base64")}" width="${fw}" height="${fh}" style="image-rendering:pixelated"/>` +
    `<img src="data:image/png;base64,${strip.toString("base64")}" width="${stripW}" style="image-rendering:pixelated"/></div>` +
    (note ? `<div style="font-size:11px;color:#666">${escapeHtml(note)}</div>` : "") +
    `</figure>`;
  return new Rich(
    { "text/plain": text, "text/html": markup, "image/png": strip.toString("base64") },
    { "image/png": { width: stripW, height: stripH } },
  );
}

/** Pixels scaled up by an integer factor (nearest neighbour). */
async function scalePixels(pixels: Pixels, scale: number): Promise<Pixels> {
  if (!(Number.isInteger(scale) && scale >= 1)) throw new Error(`video: upscale must be a positive integer, got ${scale}`);
  if (scale === 1) return pixels;
  const sharp = loadSharp();
  const { data, info } = await sharp(pixels.data, {
    raw: { width: pixels.width, height: pixels.height, channels: pixels.channels },
  })
    .resize(pixels.width * scale, pixels.height * scale, { kernel: "nearest" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as 1 | 3 | 4 };
}
