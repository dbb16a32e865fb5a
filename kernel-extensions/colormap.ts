/**
 * Colormaps for heatmaps, spectrograms and attention maps: matplotlib's
 * "viridis" (perceptually uniform, readable in grayscale and by colour-blind
 * readers), sampled at 9 stops and interpolated linearly.
 */

/** viridis at 0, 1/8, …, 1 (matplotlib's `_viridis_data`, every 32nd entry). */
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** RGB bytes of viridis at `t` in [0, 1] (clamped; NaN → the low end). */
export function viridis(t: number): [number, number, number] {
  const clamped = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const position = clamped * (VIRIDIS.length - 1);
  const low = Math.min(VIRIDIS.length - 2, Math.floor(position));
  const fraction = position - low;
  const a = VIRIDIS[low];
  const b = VIRIDIS[low + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * fraction)) as [number, number, number];
}

/** `#rrggbb` of viridis at `t`. */
export function viridisHex(t: number): string {
  return (
    "#" +
    viridis(t)
      .map((v) => v.toString(16).padStart(2, "0"))
      .join("")
  );
}

/** Plotly's colorscale for the same map. */
export function viridisPlotlyScale(): [number, string][] {
  return VIRIDIS.map((_, k) => [k / (VIRIDIS.length - 1), viridisHex(k / (VIRIDIS.length - 1))]);
}

/** Smallest and largest finite value (0..1 when there is none; a flat range is widened by 1). */
export function finiteRange(values: ArrayLike<number>): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  if (low === Infinity) return [0, 1];
  return high > low ? [low, high] : [low, low + 1];
}

/** Maps values to RGB bytes [N·3] through viridis over `range` (default: their own finite range). */
export function colorize(values: ArrayLike<number>, range: [number, number] = finiteRange(values)): Uint8Array {
  const [low, high] = range;
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) out.set(viridis((values[i] - low) / (high - low)), i * 3);
  return out;
}
