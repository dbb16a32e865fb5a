/**
 * Video clips: 8–16 frames of objects moving (direction, speed), bouncing off
 * the walls, appearing and disappearing; a caption and questions about what
 * happens over time (after the temporal questions of CLEVRER, Yi et al., 2020).
 * Frames are scenes; a clip is stored as a horizontal filmstrip PNG.
 */
import { Random } from "../util/random";
import { type Scene, type SceneObject, BACKGROUNDS, objectRadius, sampleObject } from "./scene";
import { objectName, withArticle, listPhrase } from "./captions";
import type { VqaPair } from "./vqa";
import { annotate } from "./vqa";

export const DIRECTIONS = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1] } as const;
export type Direction = keyof typeof DIRECTIONS;
const OPPOSITE: Record<Direction, Direction> = { left: "right", right: "left", up: "down", down: "up" };
export const SPEEDS = { slowly: 1.5, quickly: 3.5 } as const;
export type Speed = keyof typeof SPEEDS;

/** One object's track through a clip. */
export interface Track {
  readonly object: SceneObject;
  /** The way it moves in its first visible frame (for an object that appears part way, after any bounce before it is seen). */
  readonly direction: Direction;
  readonly speed: Speed;
  /** First frame it is visible. */
  readonly appearAt: number;
  /** First frame it is no longer visible (= frames when it stays). */
  readonly disappearAt: number;
  /** Frames at which it bounced off a wall. */
  readonly bounces: readonly number[];
  /** Its center in every frame. */
  readonly positions: readonly (readonly [number, number])[];
}

export interface VideoClip {
  readonly frames: readonly Scene[];
  readonly tracks: readonly Track[];
  readonly caption: string;
  readonly questions: readonly VqaPair[];
}

/** Moves an object frame by frame, reflecting its velocity at the walls. */
function simulate(object: SceneObject, direction: Direction, speed: Speed, frames: number, canvas: number): { positions: [number, number][]; bounces: number[] } {
  const r = objectRadius(object.size, canvas);
  let [vx, vy] = DIRECTIONS[direction].map((d) => d * SPEEDS[speed]);
  let [x, y] = [object.x, object.y];
  const positions: [number, number][] = [];
  const bounces: number[] = [];
  for (let f = 0; f < frames; f++) {
    positions.push([Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
    x += vx;
    y += vy;
    let bounced = false;
    if (x - r < 0 || x + r > canvas) {
      vx = -vx;
      x = x - r < 0 ? 2 * r - x : 2 * (canvas - r) - x;
      bounced = true;
    }
    if (y - r < 0 || y + r > canvas) {
      vy = -vy;
      y = y - r < 0 ? 2 * r - y : 2 * (canvas - r) - y;
      bounced = true;
    }
    if (bounced && f + 1 < frames) bounces.push(f + 1);
  }
  return { positions, bounces };
}

/** A random clip of `frames` frames (8–16) with one or two moving objects. */
export function sampleVideo(random: Random, frames = 12, canvas = 64): VideoClip {
  if (!Number.isInteger(frames) || frames < 8 || frames > 16) throw new Error(`sampleVideo: frames must be an integer in 8…16, got ${frames}`);
  const background = BACKGROUNDS[random.int(0, BACKGROUNDS.length)];
  const count = random.int(1, 3);
  const objects: SceneObject[] = [];
  while (objects.length < count) {
    const o = sampleObject(random, objects, canvas, 6);
    if (!o) break;
    if (!objects.some((p) => p.color === o.color && p.shape === o.shape)) objects.push(o);
  }
  const directions = Object.keys(DIRECTIONS) as Direction[];
  const speeds = Object.keys(SPEEDS) as Speed[];
  const tracks: Track[] = objects.map((object, k) => {
    const launch = directions[random.int(0, directions.length)];
    const speed = speeds[random.int(0, speeds.length)];
    // The second object may appear or disappear part way through.
    const change = k === 1 ? random.int(0, 3) : 0; // 0 stays, 1 appears, 2 disappears
    const middle = random.int(Math.floor(frames / 3), Math.ceil((2 * frames) / 3));
    const { positions, bounces } = simulate(object, launch, speed, frames, canvas);
    const appearAt = change === 1 ? middle : 0;
    // What the clip shows first: an object that appears part way may have bounced (its velocity reversed) before it is
    // seen, so its direction is the one it moves in at its first visible frame, not the one it was launched in.
    const reversals = bounces.filter((b) => b <= appearAt).length;
    const direction = reversals % 2 === 0 ? launch : OPPOSITE[launch];
    return { object, direction, speed, appearAt, disappearAt: change === 2 ? middle : frames, bounces, positions };
  });
  const scenes: Scene[] = [];
  for (let f = 0; f < frames; f++) {
    const visible = tracks.filter((t) => f >= t.appearAt && f < t.disappearAt).map((t) => ({ ...t.object, x: t.positions[f][0], y: t.positions[f][1] }));
    scenes.push({ canvas, background, objects: visible });
  }
  const describe = (t: Track) => {
    const parts = [`${withArticle(objectName(t.object))}${t.appearAt > 0 ? " appears and" : ""} moves ${t.speed} ${t.direction === "up" || t.direction === "down" ? t.direction : `to the ${t.direction}`}`];
    const bounced = t.bounces.some((b) => b >= t.appearAt && b < t.disappearAt);
    if (bounced) parts.push("bounces off the wall");
    if (t.disappearAt < frames) parts.push("then disappears");
    return listPhrase(parts);
  };
  const caption = tracks.map(describe).join("; ");
  const questions: VqaPair[] = [];
  for (const t of tracks) {
    const name = objectName(t.object);
    const bounced = t.bounces.some((b) => b >= t.appearAt && b < t.disappearAt) ? "yes" : "no";
    const direction = t.direction;
    const speed = t.speed === "quickly" ? "fast" : "slow";
    questions.push(
      { type: "relation", question: `which way does the ${name} move at first?`, answer: direction, answers: annotate(random, direction, () => OPPOSITE[direction], 0.05) },
      { type: "exist", question: `does the ${name} bounce off a wall?`, answer: bounced, answers: annotate(random, bounced, () => (bounced === "yes" ? "no" : "yes"), 0.1) },
      { type: "exist", question: `does the ${name} move fast or slow?`, answer: speed, answers: annotate(random, speed, () => (speed === "fast" ? "slow" : "fast"), 0.1) },
    );
    if (tracks.length > 1) {
      const gone = t.disappearAt < frames ? "yes" : "no";
      questions.push({ type: "exist", question: `does the ${name} disappear?`, answer: gone, answers: annotate(random, gone, () => (gone === "yes" ? "no" : "yes"), 0.05) });
    }
  }
  const atEnd = String(scenes[frames - 1].objects.length);
  questions.push({ type: "count", question: "how many objects are visible at the end?", answer: atEnd, answers: annotate(random, atEnd, () => String(Number(atEnd) + 1), 0.1) });
  return { frames: scenes, tracks, caption, questions };
}
