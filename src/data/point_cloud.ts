/**
 * Coloured point clouds of primitive solids (sphere, cube, cylinder, cone,
 * torus), points sampled uniformly on the surface, randomly scaled, rotated
 * about the vertical axis and jittered, for a later 3D lab (after the
 * point-cloud language models such as PointLLM, Xu et al., 2023).
 */
import { Random } from "../util/random";
import { COLORS, COLOR_NAMES, type ColorName } from "./vocabulary";

export const SOLIDS = ["sphere", "cube", "cylinder", "cone", "torus"] as const;
export type Solid = (typeof SOLIDS)[number];

export interface PointCloud {
  readonly solid: Solid;
  readonly color: ColorName;
  /** Overall size (half extent). */
  readonly scale: number;
  /** [N, 6] row-major: x, y, z (y up), r, g, b in [0, 1]. */
  readonly points: Float32Array;
  readonly caption: string;
}

/** A point on the unit surface of `solid` from two or three uniforms. */
function surfacePoint(solid: Solid, random: Random): [number, number, number] {
  const u = random.next();
  const v = random.next();
  switch (solid) {
    case "sphere": {
      const z = 2 * u - 1;
      const r = Math.sqrt(1 - z * z);
      return [r * Math.cos(2 * Math.PI * v), z, r * Math.sin(2 * Math.PI * v)];
    }
    case "cube": {
      const face = random.int(0, 6);
      const [a, b] = [2 * u - 1, 2 * v - 1];
      const sign = face % 2 ? 1 : -1;
      return face < 2 ? [sign, a, b] : face < 4 ? [a, sign, b] : [a, b, sign];
    }
    case "cylinder": {
      // side area 2π·1·2 = 4π, caps 2π: pick by area
      if (random.next() < 2 / 3) return [Math.cos(2 * Math.PI * v), 2 * u - 1, Math.sin(2 * Math.PI * v)];
      const r = Math.sqrt(u);
      return [r * Math.cos(2 * Math.PI * v), random.next() < 0.5 ? -1 : 1, r * Math.sin(2 * Math.PI * v)];
    }
    case "cone": {
      // apex at y = 1, base radius 1 at y = −1; side area π·√5, base π
      if (random.next() < Math.sqrt(5) / (Math.sqrt(5) + 1)) {
        const r = Math.sqrt(u); // uniform on the lateral surface
        return [r * Math.cos(2 * Math.PI * v), 1 - 2 * r, r * Math.sin(2 * Math.PI * v)];
      }
      const r = Math.sqrt(u);
      return [r * Math.cos(2 * Math.PI * v), -1, r * Math.sin(2 * Math.PI * v)];
    }
    case "torus": {
      const [major, minor] = [0.7, 0.3];
      // rejection sampling for uniform area on the tube
      for (;;) {
        const theta = 2 * Math.PI * random.next();
        if (random.next() * (major + minor) <= major + minor * Math.cos(theta)) {
          const phi = 2 * Math.PI * random.next();
          return [(major + minor * Math.cos(theta)) * Math.cos(phi), minor * Math.sin(theta), (major + minor * Math.cos(theta)) * Math.sin(phi)];
        }
      }
    }
    default:
      throw new Error(`surfacePoint: unknown solid ${JSON.stringify(solid)}`);
  }
}

function hexToRgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255) as [number, number, number];
}

/** A cloud of `count` points (default 256) of a random solid and color. */
export function samplePointCloud(random: Random, count = 256): PointCloud {
  const solid = SOLIDS[random.int(0, SOLIDS.length)];
  const color = COLOR_NAMES[random.int(0, COLOR_NAMES.length)];
  const scale = 0.5 + random.next() * 0.5;
  const angle = random.next() * 2 * Math.PI;
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  const rgb = hexToRgb(COLORS[color]);
  const points = new Float32Array(count * 6);
  for (let i = 0; i < count; i++) {
    const [x, y, z] = surfacePoint(solid, random);
    const jitter = () => (random.next() - 0.5) * 0.02;
    points.set([scale * (c * x + s * z) + jitter(), scale * y + jitter(), scale * (-s * x + c * z) + jitter(), ...rgb], i * 6);
  }
  const sizeWord = scale > 0.75 ? "large" : "small";
  return { solid, color, scale: Math.round(scale * 1000) / 1000, points, caption: `a ${sizeWord} ${color} ${solid}` };
}
