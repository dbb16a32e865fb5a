/**
 * 3D point clouds in the notebook: the cloud turning about its vertical axis
 * as a looping animation (GIF, drawn here point by point: no browser library,
 * so it plays in saved notebooks and on GitHub too), beside four still views
 * a quarter turn apart, which are also the output's static PNG.
 *
 * Rendering: the cloud is centred and scaled to the unit ball, turned by
 * θ about y (up), tilted by the camera's elevation about x, projected
 * orthographically and drawn far to near (painter's algorithm), each point a
 * small square in its colour, darkened with depth so that the near side reads
 * in front.
 */
import * as tf from "@tensorflow/tfjs";
import { loadSharp } from "../src/util/sharp";
import { escapeHtml, Rich } from "./rich";
import { animate } from "./video";
import { matrixRows } from "./plot";
import type { Pixels } from "./image";

/** Options for {@link pointCloud}. */
export interface PointCloudArgs {
  /** Views in one full turn (the animation's frames). Default 24. */
  views?: number;
  /** Side of each view in pixels. Default 160. */
  size?: number;
  /** Frames per second of the animation. Default 8. */
  fps?: number;
  /** Camera elevation in degrees (looking down on the cloud). Default 20. */
  elevation?: number;
  /** Half-side of each drawn point in pixels. Default 2. */
  pointRadius?: number;
  caption?: string;
}

/** One view of the cloud: xyz [N][3] (unit ball), rgb [N][3] in [0, 1], turned by `turn` radians about y. */
function renderView(xyz: number[][], rgb: number[][], turn: number, elevation: number, size: number, radius: number): Pixels {
  const data = Buffer.alloc(size * size * 3, 255);
  const [ct, st, ce, se] = [Math.cos(turn), Math.sin(turn), Math.cos(elevation), Math.sin(elevation)];
  const projected = xyz.map(([x, y, z], i) => {
    const xr = ct * x + st * z; // about y
    const zr = -st * x + ct * z;
    const yr = ce * y - se * zr; // tilt about x: the top comes into view
    const depth = se * y + ce * zr; // towards the camera is positive
    return { u: xr, v: yr, depth, i };
  });
  projected.sort((a, b) => a.depth - b.depth); // far first
  const half = (size - 1) / 2;
  const scale = half * 0.9;
  for (const { u, v, depth, i } of projected) {
    const shade = 0.55 + 0.45 * ((depth + 1) / 2); // far 0.55, near 1
    const [r, g, b] = rgb[i].map((c) => Math.round(255 * Math.min(1, Math.max(0, c)) * shade));
    const cx = Math.round(half + u * scale);
    const cy = Math.round(half - v * scale); // image rows grow downwards
    for (let y = Math.max(0, cy - radius); y <= Math.min(size - 1, cy + radius); y++)
      for (let x = Math.max(0, cx - radius); x <= Math.min(size - 1, cx + radius); x++) {
        const o = (y * size + x) * 3;
        data[o] = r;
        data[o + 1] = g;
        data[o + 2] = b;
      }
  }
  return { data, width: size, height: size, channels: 3 };
}

/**
 * Shows a point cloud ([N, 3] xyz with y up, or [N, 6] xyz + rgb in [0, 1]; a
 * tensor or rows) turning about its vertical axis, with four still views.
 */
export async function pointCloud(points: tf.Tensor | number[][], args: PointCloudArgs = {}): Promise<Rich> {
  const rows = await matrixRows(points, "pointCloud"); // [N][3 or 6]
  const columns = rows[0].length;
  if (columns !== 3 && columns !== 6)
    throw new Error(`pointCloud: expected [N, 3] (xyz) or [N, 6] (xyz, rgb) points, got ${rows.length} rows of ${columns}`);
  const views = args.views ?? 24;
  const size = args.size ?? 160;
  const radius = args.pointRadius ?? 2;
  for (const [name, value, least] of [
    ["views", views, 4],
    ["size", size, 16],
    ["pointRadius", radius, 0],
  ] as const)
    if (!(Number.isInteger(value) && value >= least))
      throw new Error(`pointCloud: ${name} must be an integer ≥ ${least}, got ${JSON.stringify(value)}`);
  const bad = rows.findIndex((row) => row.some((v) => !Number.isFinite(v)));
  if (bad >= 0) throw new Error(`pointCloud: point ${bad} is not finite: [${rows[bad].join(", ")}]`);
  const mean = [0, 1, 2].map((c) => rows.reduce((sum, row) => sum + row[c], 0) / rows.length);
  const extent = Math.max(1e-9, ...rows.map((row) => Math.hypot(row[0] - mean[0], row[1] - mean[1], row[2] - mean[2])));
  const xyz = rows.map((row) => [0, 1, 2].map((c) => (row[c] - mean[c]) / extent)); // unit ball
  const rgb = rows.map((row) => (columns === 6 ? row.slice(3, 6) : [0.35, 0.45, 0.6]));
  const elevation = ((args.elevation ?? 20) * Math.PI) / 180;
  const frames = Array.from({ length: views }, (_, k) =>
    renderView(xyz, rgb, (2 * Math.PI * k) / views, elevation, size, radius),
  );
  const fps = args.fps ?? 8;
  const animation = await animate(frames, fps, "gif");
  // Four still views, a quarter turn apart, with 2-pixel white gaps.
  const sharp = loadSharp();
  const stills = [0, 1, 2, 3].map((q) => renderView(xyz, rgb, (q * Math.PI) / 2, elevation, size, radius));
  const stripWidth = 4 * size + 3 * 2;
  const strip = await sharp({ create: { width: stripWidth, height: size, channels: 3, background: "#ffffff" } })
    .composite(
      await Promise.all(
        stills.map(async (view, q) => ({
          input: await sharp(view.data, { raw: { width: size, height: size, channels: 3 } })
            .png()
            .toBuffer(),
          left: q * (size + 2),
          top: 0,
        })),
      ),
    )
    .removeAlpha()
    .png({ compressionLevel: 9 })
    .toBuffer();
  const what = points instanceof tf.Tensor ? `[${points.shape.join(", ")}] ${points.dtype}` : `${rows.length} × ${columns}`;
  const text = `${args.caption ? `${args.caption}: ` : ""}<point cloud ${what}, ${rows.length} points, ${views} views of ${size}×${size} at ${fps} fps>`;
  const markup =
    `<figure style="margin:0">${args.caption ? `<figcaption>${escapeHtml(args.caption)}</figcaption>` : ""}` +
    `<div style="display:flex;gap:12px;align-items:flex-start"><img class="mllm-points" src="data:image/gif;base64,${animation.toString("base64")}" width="${size}" height="${size}"/>` +
    `<img src="data:image/png;base64,${strip.toString("base64")}" width="${stripWidth}" height="${size}"/></div>` +
    `<div style="font-size:11px;color:#666">turning about the vertical axis; stills at 0°, 90°, 180°, 270°</div></figure>`;
  return new Rich(
    { "text/plain": text, "text/html": markup, "image/png": strip.toString("base64") },
    { "image/png": { width: stripWidth, height: size } },
  );
}
