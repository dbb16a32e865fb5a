/**
 * Medical-style instruction data, clearly synthetic: grayscale 64×64 "scans"
 * of an oval organ with 0–3 lesions (bright or dark, small or large, in one of
 * the organ's quadrants), with findings, location and size as instruction
 * pairs (in the spirit of LLaVA-Med, Li et al., 2023; no real patient data).
 */
import { Random } from "../util/random";
import { loadSharp } from "../util/sharp";

export interface Lesion {
  readonly x: number;
  readonly y: number;
  /** Radius in pixels. */
  readonly radius: number;
  readonly size: "small" | "large";
  readonly appearance: "bright" | "dark";
  /** "upper left", "lower right", … relative to the image. */
  readonly location: string;
}

export interface Scan {
  readonly size: number;
  readonly lesions: readonly Lesion[];
  /** Grayscale pixels [size, size], row-major. */
  readonly pixels: Uint8Array;
  readonly findings: string;
}

function gaussian(random: Random): number {
  const u = Math.max(random.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

function locationOf(x: number, y: number, size: number): string {
  return `${y < size / 2 ? "upper" : "lower"} ${x < size / 2 ? "left" : "right"}`;
}

const COUNT_WORDS = ["no", "one", "two", "three"];

/** The findings sentence for a list of lesions. */
export function describeFindings(lesions: readonly Lesion[]): string {
  if (lesions.length === 0) return "no lesions are seen. the organ looks normal.";
  const parts = lesions.map((l) => `a ${l.size} ${l.appearance} lesion in the ${l.location}`);
  const list = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
  return `${COUNT_WORDS[lesions.length]} lesion${lesions.length > 1 ? "s" : ""}: ${list}.`;
}

/** A random scan with 0–3 lesions. */
export function sampleScan(random: Random, size = 64): Scan {
  const [cx, cy] = [size / 2 + (random.next() - 0.5) * 4, size / 2 + (random.next() - 0.5) * 4];
  const [rx, ry] = [size * (0.36 + random.next() * 0.06), size * (0.3 + random.next() * 0.06)];
  const count = random.int(0, 4);
  const lesions: Lesion[] = [];
  for (let tries = 0; lesions.length < count && tries < 100; tries++) {
    const large = random.next() < 0.5;
    const radius = large ? 4 + random.next() * 2 : 2 + random.next();
    const angle = random.next() * 2 * Math.PI;
    const reach = Math.sqrt(random.next()) * 0.75;
    const x = cx + Math.cos(angle) * rx * reach;
    const y = cy + Math.sin(angle) * ry * reach;
    if (Math.abs(x - size / 2) < 3 || Math.abs(y - size / 2) < 3) continue; // keep quadrants unambiguous
    if (lesions.some((l) => Math.hypot(l.x - x, l.y - y) < l.radius + radius + 4)) continue;
    if (lesions.some((l) => l.location === locationOf(x, y, size))) continue; // one lesion per quadrant
    lesions.push({ x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10, radius: Math.round(radius * 10) / 10, size: large ? "large" : "small", appearance: random.next() < 0.5 ? "bright" : "dark", location: locationOf(x, y, size) });
  }
  // Smooth tissue texture: a coarse random grid, bilinearly interpolated.
  const grid = 9;
  const coarse = Array.from({ length: grid * grid }, () => gaussian(random));
  const pixels = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const gx = (x / size) * (grid - 1);
      const gy = (y / size) * (grid - 1);
      const [x0, y0] = [Math.floor(gx), Math.floor(gy)];
      const [fx, fy] = [gx - x0, gy - y0];
      const at = (i: number, j: number) => coarse[Math.min(grid - 1, j) * grid + Math.min(grid - 1, i)];
      const texture = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
      const inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2;
      let value = 25 + (inside <= 1 ? 105 + 12 * texture : Math.max(0, 20 * (1.15 - inside) / 0.15)); // organ with a soft rim
      for (const l of lesions) {
        const d2 = (x - l.x) ** 2 + (y - l.y) ** 2;
        value += (l.appearance === "bright" ? 80 : -70) * Math.exp(-d2 / (2 * (l.radius * 0.7) ** 2));
      }
      value += 5 * gaussian(random);
      pixels[y * size + x] = Math.max(0, Math.min(255, Math.round(value)));
    }
  }
  return { size, lesions, pixels, findings: describeFindings(lesions) };
}

/** A grayscale PNG of a scan. */
export function scanPng(scan: Scan): Promise<Buffer> {
  return loadSharp()(Buffer.from(scan.pixels), { raw: { width: scan.size, height: scan.size, channels: 1 } }).png({ compressionLevel: 9, adaptiveFiltering: false }).toBuffer();
}

/** The findings request: what the world's medical conversations open with and what the evals ask. */
export const MEDICAL_FINDINGS_INSTRUCTION = "describe the findings in this scan.";

/** Instruction–response pairs about a scan. */
export function scanInstructions(scan: Scan, random: Random): { instruction: string; response: string }[] {
  const pairs = [
    { instruction: MEDICAL_FINDINGS_INSTRUCTION, response: scan.findings },
    { instruction: "how many lesions are visible?", response: String(scan.lesions.length) },
  ];
  const quadrant = ["upper left", "upper right", "lower left", "lower right"][random.int(0, 4)];
  const lesion = scan.lesions.find((l) => l.location === quadrant);
  pairs.push({ instruction: `is there a lesion in the ${quadrant}?`, response: lesion ? `yes, a ${lesion.size} ${lesion.appearance} lesion.` : "no." });
  return pairs;
}
