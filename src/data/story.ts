/**
 * Visual stories: five scenes with one coherent change between each pair
 * (an object arrives, moves, leaves, or two objects meet) and one sentence per
 * frame, for the visual storytelling lab (after VIST, Huang et al., 2016).
 */
import { Random } from "../util/random";
import { type Scene, type SceneObject, BACKGROUNDS, objectRadius, overlaps, placeObject, sampleObject } from "./scene";
import { objectName, placePhrase, withArticle, listPhrase } from "./captions";

export type StoryEvent = "start" | "arrive" | "move" | "leave" | "meet";

export interface StoryFrame {
  readonly scene: Scene;
  readonly event: StoryEvent;
  readonly sentence: string;
}

export interface Story {
  readonly frames: readonly StoryFrame[];
}

/** An object whose color+shape no other object in `others` has. */
function distinctObject(random: Random, others: readonly SceneObject[], canvas: number): SceneObject | undefined {
  for (let k = 0; k < 50; k++) {
    const o = sampleObject(random, others, canvas);
    if (!o) return undefined;
    if (!others.some((p) => p.color === o.color && p.shape === o.shape)) return o;
  }
  return undefined;
}

/** A random story of `length` frames (default 5). */
export function sampleStory(random: Random, length = 5, canvas = 64): Story {
  if (!Number.isInteger(length) || length < 2) throw new Error(`sampleStory: length must be an integer ≥ 2, got ${length}`);
  const background = BACKGROUNDS[random.int(0, BACKGROUNDS.length)];
  let objects: SceneObject[] = [];
  const first = random.int(1, 3);
  while (objects.length < first) {
    const o = distinctObject(random, objects, canvas);
    if (!o) break;
    objects.push(o);
  }
  const frames: StoryFrame[] = [];
  const opening = objects.length === 1
    ? `there is ${withArticle(objectName(objects[0]))} ${placePhrase(objects[0], canvas)}.`
    : `${listPhrase(objects.map((o) => withArticle(objectName(o))))} are in the picture.`;
  frames.push({ scene: { canvas, background, objects }, event: "start", sentence: opening });
  while (frames.length < length) {
    const choices: StoryEvent[] = ["move"];
    if (objects.length < 4) choices.push("arrive", "arrive");
    if (objects.length >= 2) choices.push("leave", "meet");
    const event = choices[random.int(0, choices.length)];
    let sentence: string | undefined;
    const next = objects.slice();
    if (event === "arrive") {
      const o = distinctObject(random, objects, canvas);
      if (o) {
        next.push(o);
        sentence = `${withArticle(objectName(o))} arrives ${placePhrase(o, canvas)}.`;
      }
    } else if (event === "leave") {
      const k = random.int(0, objects.length);
      sentence = `the ${objectName(objects[k])} leaves.`;
      next.splice(k, 1);
    } else if (event === "move") {
      const k = random.int(0, objects.length);
      const others = objects.filter((_, i) => i !== k);
      const place = placeObject(random, objects[k].size, others, canvas);
      if (place && Math.hypot(place.x - objects[k].x, place.y - objects[k].y) > 12) {
        next[k] = { ...objects[k], ...place };
        sentence = `the ${objectName(objects[k])} moves to the ${placePhrase(place, canvas).replace(/^(in|on|at) the /, "")}.`;
      }
    } else {
      // meet: a moves next to b, on the side facing it
      const i = random.int(0, objects.length);
      let j = random.int(0, objects.length - 1);
      if (j >= i) j++;
      const [a, b] = [objects[i], objects[j]];
      const distance = objectRadius(a.size, canvas) + objectRadius(b.size, canvas) + 4;
      const angle = Math.atan2(a.y - b.y, a.x - b.x);
      const moved = { ...a, x: Math.round(b.x + distance * Math.cos(angle)), y: Math.round(b.y + distance * Math.sin(angle)) };
      const r = objectRadius(a.size, canvas);
      const inside = moved.x - r >= 1 && moved.y - r >= 1 && moved.x + r <= canvas - 1 && moved.y + r <= canvas - 1;
      const clear = objects.every((o, k) => k === i || !overlaps(moved, o, canvas, 2));
      if (inside && clear && Math.hypot(moved.x - a.x, moved.y - a.y) > 6) {
        next[i] = moved;
        sentence = `the ${objectName(a)} goes to meet the ${objectName(b)}.`;
      }
    }
    if (!sentence) continue; // the event did not fit this scene: draw another
    objects = next;
    frames.push({ scene: { canvas, background, objects }, event, sentence });
  }
  return { frames };
}
