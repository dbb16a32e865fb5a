/**
 * Scenes: 1–4 coloured shapes on a plain background, as data (what is where)
 * and as an image (SVG rasterised by sharp).
 *
 * A scene is the unit of the image world: captions (captions.ts), VQA
 * (vqa.ts), stories (story.ts) and videos (video.ts) all describe scenes.
 * Objects never overlap, so every object's center pixel shows its own color;
 * the tests re-render scenes and check exactly that.
 */
import { Random } from "../util/random";
import { decodeRgb } from "../preprocess/clip_image";
import type { PixelImage } from "../preprocess/resample";
import { COLORS, COLOR_NAMES, SHAPE_NAMES, SIZES, SIZE_NAMES, type ColorName, type ShapeName, type SizeName } from "./vocabulary";
import { loadSharp } from "../util/sharp";

/** @deprecated import it from util/sharp.ts; re-exported for the callers of the old place. */
export { loadSharp };

/** One object of a scene. Coordinates are pixels of a `canvas`×`canvas` image, origin top left. */
export interface SceneObject {
  readonly shape: ShapeName;
  readonly color: ColorName;
  readonly size: SizeName;
  /** Center, x to the right. */
  readonly x: number;
  /** Center, y downwards. */
  readonly y: number;
}

export interface Scene {
  /** Side of the square image in pixels. Default 64. */
  readonly canvas: number;
  /** Background color (hex). Default white. */
  readonly background: string;
  readonly objects: readonly SceneObject[];
}

export interface SampleSceneArgs {
  /** Side of the image. Default 64. */
  readonly canvas?: number;
  /** Fewest objects. Default 1. */
  readonly minObjects?: number;
  /** Most objects. Default 4. */
  readonly maxObjects?: number;
  /** Gap kept between objects' extents, pixels. Default 3. */
  readonly gap?: number;
  /** Relative weights of the counts minObjects, minObjects + 1, …, maxObjects. Default equal. */
  readonly countWeights?: readonly number[];
}

/** Light backgrounds a scene is drawn on (never an object color). */
export const BACKGROUNDS = ["#ffffff", "#f2f2f2", "#f7f3e8", "#eef3f7"] as const;

/** Radius of an object in a scene of side `canvas` (SIZES are for 64). */
export function objectRadius(size: SizeName, canvas = 64): number {
  return (SIZES[size] * canvas) / 64;
}

/** True when two objects' bounding circles, grown by `gap`, intersect. */
export function overlaps(a: Pick<SceneObject, "x" | "y" | "size">, b: Pick<SceneObject, "x" | "y" | "size">, canvas = 64, gap = 3): boolean {
  const distance = Math.hypot(a.x - b.x, a.y - b.y);
  return distance < objectRadius(a.size, canvas) + objectRadius(b.size, canvas) + gap;
}

/**
 * A random position for an object of `size` that keeps it inside the canvas
 * and apart from `others`; undefined after 200 tries.
 */
export function placeObject(random: Random, size: SizeName, others: readonly SceneObject[], canvas = 64, gap = 3): { x: number; y: number } | undefined {
  const r = objectRadius(size, canvas);
  for (let attempt = 0; attempt < 200; attempt++) {
    const x = random.int(Math.ceil(r + 1), Math.floor(canvas - r - 1) + 1);
    const y = random.int(Math.ceil(r + 1), Math.floor(canvas - r - 1) + 1);
    if (others.every((o) => !overlaps({ x, y, size }, o, canvas, gap))) return { x, y };
  }
  return undefined;
}

/** A random object of random shape, color and size (placed by `placeObject`). */
export function sampleObject(random: Random, others: readonly SceneObject[], canvas = 64, gap = 3): SceneObject | undefined {
  const shape = SHAPE_NAMES[random.int(0, SHAPE_NAMES.length)];
  const color = COLOR_NAMES[random.int(0, COLOR_NAMES.length)];
  const size = SIZE_NAMES[random.int(0, SIZE_NAMES.length)];
  const place = placeObject(random, size, others, canvas, gap);
  return place && { shape, color, size, ...place };
}

/** A random scene of `minObjects`…`maxObjects` non-overlapping objects. */
export function sampleScene(random: Random, args: SampleSceneArgs = {}): Scene {
  const canvas = args.canvas ?? 64;
  const minObjects = args.minObjects ?? 1;
  const maxObjects = args.maxObjects ?? 4;
  if (!(Number.isInteger(minObjects) && Number.isInteger(maxObjects) && minObjects >= 1 && maxObjects >= minObjects)) {
    throw new Error(`sampleScene: need 1 ≤ minObjects ≤ maxObjects, got ${minObjects}…${maxObjects}`);
  }
  let count = random.int(minObjects, maxObjects + 1);
  if (args.countWeights) {
    const weights = args.countWeights;
    if (weights.length !== maxObjects - minObjects + 1 || weights.some((w) => !(w >= 0))) throw new Error(`sampleScene: countWeights needs ${maxObjects - minObjects + 1} non-negative weights, got [${weights}]`);
    let draw = random.next() * weights.reduce((a, b) => a + b, 0);
    count = minObjects;
    for (let k = 0; k < weights.length; k++) {
      draw -= weights[k];
      if (draw < 0) {
        count = minObjects + k;
        break;
      }
    }
  }
  const objects: SceneObject[] = [];
  while (objects.length < count) {
    const object = sampleObject(random, objects, canvas, args.gap ?? 3);
    if (!object) break; // the canvas is full: keep fewer objects
    objects.push(object);
  }
  return { canvas, background: BACKGROUNDS[random.int(0, BACKGROUNDS.length)], objects };
}

/** SVG element of one object (no surrounding <svg>). */
export function shapeElement(object: SceneObject, canvas = 64): string {
  const { x, y } = object;
  const r = objectRadius(object.size, canvas);
  const fill = COLORS[object.color];
  const points = (list: [number, number][]) => list.map(([px, py]) => `${round(px)},${round(py)}`).join(" ");
  switch (object.shape) {
    case "circle":
      return `<circle cx="${x}" cy="${y}" r="${round(r)}" fill="${fill}"/>`;
    case "square":
      return `<rect x="${round(x - r * 0.85)}" y="${round(y - r * 0.85)}" width="${round(1.7 * r)}" height="${round(1.7 * r)}" fill="${fill}"/>`;
    case "triangle": // centroid at (x, y)
      return `<polygon points="${points([[x, y - r], [x + 0.95 * r, y + 0.7 * r], [x - 0.95 * r, y + 0.7 * r]])}" fill="${fill}"/>`;
    case "diamond":
      return `<polygon points="${points([[x, y - r], [x + r, y], [x, y + r], [x - r, y]])}" fill="${fill}"/>`;
    case "star": {
      const corners: [number, number][] = [];
      for (let k = 0; k < 10; k++) {
        const radius = k % 2 === 0 ? r : r * 0.45;
        const angle = -Math.PI / 2 + (k * Math.PI) / 5;
        corners.push([x + radius * Math.cos(angle), y + radius * Math.sin(angle)]);
      }
      return `<polygon points="${points(corners)}" fill="${fill}"/>`;
    }
    default:
      throw new Error(`shapeElement: unknown shape ${JSON.stringify((object as SceneObject).shape)}`);
  }
}

function round(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** The whole scene as an SVG document. */
export function sceneSvg(scene: Scene): string {
  const c = scene.canvas;
  const body = scene.objects.map((o) => shapeElement(o, c)).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${c}" height="${c}" viewBox="0 0 ${c} ${c}"><rect width="${c}" height="${c}" fill="${scene.background}"/>${body}</svg>`;
}

/** Rasterises an SVG document to an RGB PNG (sharp, loaded on first use). */
export async function svgToPng(svg: string): Promise<Buffer> {
  const sharp = loadSharp();
  return sharp(Buffer.from(svg)).removeAlpha().png({ compressionLevel: 9, adaptiveFiltering: false }).toBuffer();
}

/** Rasterises an SVG to raw RGB bytes [H, W, 3]. */
export function svgToRgb(svg: string): Promise<PixelImage<Uint8Array>> {
  return decodeRgb(Buffer.from(svg));
}

/** The scene as a PNG image. */
export function renderScene(scene: Scene): Promise<Buffer> {
  return svgToPng(sceneSvg(scene));
}

/** Joins equally sized RGB PNG frames left to right into one strip (videos and stories are stored so). */
export async function filmstrip(frames: readonly string[], frameSize: number): Promise<Buffer> {
  const sharp = loadSharp();
  const parts = await Promise.all(frames.map((svg) => sharp(Buffer.from(svg)).removeAlpha().png().toBuffer()));
  return sharp({ create: { width: frameSize * frames.length, height: frameSize, channels: 3, background: "#ffffff" } })
    .composite(parts.map((input, k) => ({ input, left: k * frameSize, top: 0 })))
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toBuffer();
}
