/**
 * Captions of scenes in varied phrasing, as in COCO-style captioning data:
 * every caption names every object's color and shape; some add sizes, places,
 * counts or a relation between two objects.
 */
import { Random } from "../util/random";
import type { Scene, SceneObject } from "./scene";
import { NUMBER_WORDS, article, pick, plural } from "./vocabulary";

/** "top left", "right", "center", … from an object's position in thirds of the canvas. */
export function placeWords(object: Pick<SceneObject, "x" | "y">, canvas = 64): string {
  const column = object.x < canvas / 3 ? "left" : object.x >= (2 * canvas) / 3 ? "right" : "";
  const row = object.y < canvas / 3 ? "top" : object.y >= (2 * canvas) / 3 ? "bottom" : "";
  if (row && column) return `${row} ${column}`;
  return row || column || "center";
}

/** "in the top left" / "on the left" / "at the top" / "in the center". */
export function placePhrase(object: Pick<SceneObject, "x" | "y">, canvas = 64): string {
  const words = placeWords(object, canvas);
  if (words === "left" || words === "right") return `on the ${words}`;
  if (words === "top" || words === "bottom") return `at the ${words}`;
  return `in the ${words}`;
}

/** Where `a` is relative to `b`, along the axis they differ most: "to the left of", "above", … */
export function relation(a: Pick<SceneObject, "x" | "y">, b: Pick<SceneObject, "x" | "y">): "to the left of" | "to the right of" | "above" | "below" {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  if (Math.abs(dx) >= Math.abs(dy)) return dx < 0 ? "to the left of" : "to the right of";
  return dy < 0 ? "above" : "below";
}

/** "red circle", "small red circle" (`withSize`). */
export function objectName(object: SceneObject, withSize = false): string {
  return withSize ? `${object.size} ${object.color} ${object.shape}` : `${object.color} ${object.shape}`;
}

/** "a red circle", "an orange star". */
export function withArticle(phrase: string): string {
  return `${article(phrase)} ${phrase}`;
}

/** "a, b and c". */
export function listPhrase(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** Groups identical color+shape objects: "two red circles and a blue star". */
function countedList(scene: Scene): string {
  const groups = new Map<string, SceneObject[]>();
  for (const o of scene.objects) {
    const key = objectName(o);
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  return listPhrase([...groups.values()].map((g) => (g.length === 1 ? withArticle(objectName(g[0])) : `${NUMBER_WORDS[g.length]} ${g[0].color} ${plural(g[0].shape)}`)));
}

/** One caption of a scene, phrased at random; deterministic for a given `random` state. */
export function captionScene(scene: Scene, random: Random): string {
  const objects = scene.objects;
  const n = objects.length;
  const style = random.int(0, n >= 2 ? 6 : 4);
  switch (style) {
    case 0:
      return countedList(scene);
    case 1:
      return `${pick(random, ["a picture of", "an image of", "a drawing of", "a scene with"])} ${countedList(scene)}`;
    case 2:
      return listPhrase(objects.map((o) => `${withArticle(objectName(o, true))} ${placePhrase(o, scene.canvas)}`));
    case 3:
      return n === 1
        ? `${pick(random, ["there is", "we see", "the image shows"])} ${withArticle(objectName(objects[0], true))} ${placePhrase(objects[0], scene.canvas)}`
        : `${NUMBER_WORDS[n]} shapes: ${listPhrase(objects.map((o) => withArticle(objectName(o, random.next() < 0.5))))}`;
    case 4: {
      const [a, b] = objects;
      const rest = objects.slice(2).map((o) => withArticle(objectName(o)));
      const head = `${withArticle(objectName(a))} ${relation(a, b)} ${withArticle(objectName(b))}`;
      return rest.length ? `${head}, with ${listPhrase(rest)}` : head;
    }
    default: {
      const largest = objects.find((o) => o.size === "large") ?? objects[0];
      const others = objects.filter((o) => o !== largest).map((o) => withArticle(objectName(o)));
      return `${withArticle(objectName(largest, true))} ${placePhrase(largest, scene.canvas)} next to ${listPhrase(others)}`;
    }
  }
}
