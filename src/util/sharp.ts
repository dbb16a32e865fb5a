/**
 * sharp (libvips) for image decoding and encoding, loaded on first use so the
 * library imports (and the notebooks start) without it: the scene generator,
 * CLIP preprocessing, the display extensions and the checker all load it here.
 */

/** The sharp module (throws the usual module-not-found error when it is not installed). */
export function loadSharp(): typeof import("sharp").default {
  return require("sharp");
}
