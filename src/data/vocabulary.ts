/**
 * The words of the synthetic world: the colors, shapes, sizes and places that
 * every generator draws from and every caption, question and answer speaks of.
 *
 * The world is deliberately small (6 colors × 5 shapes × 2 sizes), so that tiny
 * models trained on it in minutes can be told apart from chance, and rich enough
 * (relations, counts, motion, sound, sensors) that aligning them is a real task.
 */

/** Object colors: name → sRGB hex. Chosen to stay apart after resizing and blur. */
export const COLORS = {
  red: "#e6194b",
  green: "#3cb44b",
  blue: "#4363d8",
  yellow: "#ffe119",
  purple: "#911eb4",
  orange: "#f58231",
} as const;
export type ColorName = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as ColorName[];

/** Object shapes, each drawn by `shapePath` in scene.ts. */
export const SHAPE_NAMES = ["circle", "square", "triangle", "diamond", "star"] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];

/** Object sizes: the radius (half the extent) in pixels of a 64×64 scene. */
export const SIZES = { small: 7, large: 11 } as const;
export type SizeName = keyof typeof SIZES;
export const SIZE_NAMES = Object.keys(SIZES) as SizeName[];

/** Colors that people asked in a VQA-style survey sometimes give instead (annotator disagreement). */
export const CONFUSABLE_COLORS: Record<ColorName, ColorName> = {
  red: "orange",
  orange: "red",
  yellow: "orange",
  green: "blue",
  blue: "purple",
  purple: "blue",
};

/** Shapes people sometimes name instead. */
export const CONFUSABLE_SHAPES: Record<ShapeName, ShapeName> = {
  circle: "circle",
  square: "diamond",
  diamond: "square",
  triangle: "triangle",
  star: "star",
};

/** Number words for counts in captions ("two red circles"). */
export const NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"] as const;

/** Plural of a shape name. */
export function plural(shape: ShapeName): string {
  return `${shape}s`;
}

/** "a" or "an" before a word. */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}

/** Picks one of several phrasings. */
export function pick<T>(random: { int(low: number, high: number): number }, items: readonly T[]): T {
  return items[random.int(0, items.length)];
}
