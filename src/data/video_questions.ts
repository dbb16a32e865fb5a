/**
 * Questions about a clip that need time or sound, derived exactly from its
 * tracks: **order** ("is the X there at first?", "which bounces first, the X
 * or the Y?") and **audio-visual** ("which object do you hear …?",
 * "which way does the object you hear move at first?"). The stored clips'
 * questions (video.ts) ask direction, speed, bounce, disappearance and count;
 * these two kinds are computed from the same annotations (`tracks`), so the
 * committed world (and the language corpus and tokenizer made from it) stays
 * as it is.
 *
 * Order questions follow CLEVRER's temporal questions (Yi et al., 2020), and
 * are asked only where the frames' order decides them: neither a bag of the
 * clip's frames (how many frames show each object, whether it bounces while
 * visible) nor its middle frame says the answer (see {@link orderQuestions};
 * `bench/video_order_shortcut.js` measures both readers on them).
 * The audio-visual ones are sound-source questions in the manner of AVQA (Yang
 * et al., 2022) and Music-AVQA (Li et al., 2022): the soundtrack holds only one
 * of the two objects' sounds, so the picture alone cannot say which is heard.
 * The two names of a question are always in alphabetical order, so the
 * position of the answer in the question tells nothing.
 */
import type { SceneObject } from "./scene";
import type { VqaPair } from "./vqa";
import { objectName } from "./captions";
import type { Direction } from "./video";

/** What the questions need of a track: its object, first direction, visible frames and bounce frames. */
export interface TrackTiming {
  readonly object: Pick<SceneObject, "color" | "shape">;
  readonly direction: Direction;
  /** First frame it is visible. */
  readonly appearAt: number;
  /** First frame it is no longer visible (= the clip's frames when it stays). */
  readonly disappearAt: number;
  /** Frames at which it bounced off a wall (visible or not). */
  readonly bounces: readonly number[];
}

/** A stored record's `tracks` (snake_case, as the JSONL writes them) → {@link TrackTiming}. */
export function trackTimings(
  tracks: readonly {
    object: Pick<SceneObject, "color" | "shape">;
    direction: Direction;
    appear_at: number;
    disappear_at: number;
    bounces: readonly number[];
  }[],
): TrackTiming[] {
  return tracks.map((t, k) => {
    for (const key of ["appear_at", "disappear_at"] as const)
      if (!Number.isInteger(t[key])) throw new Error(`trackTimings: track ${k} has ${key} ${JSON.stringify(t[key])}; expected a frame index`);
    return { object: t.object, direction: t.direction, appearAt: t.appear_at, disappearAt: t.disappear_at, bounces: t.bounces };
  });
}

/**
 * The two candidates a question offers ("which bounces first, the blue star or the red circle?" → ["blue star",
 * "red circle"]; "is the red circle there at first?" → ["yes", "no"]), or undefined for an open question. The derived
 * questions whose answer is one of two offer them (the order questions and "which object do you hear"); the world's
 * own questions stay open.
 */
export function offeredCandidates(question: string): [string, string] | undefined {
  const match = /, the ([a-z ]+?) or the ([a-z ]+)\?$/.exec(question);
  if (match) return [match[1], match[2]];
  return /^is the [a-z ]+ there at first\?$/.test(question) ? ["yes", "no"] : undefined;
}

/** A derived question: its one true answer, given by all ten "annotators" (it is exact). */
function exact(question: string, answer: string, type: VqaPair["type"]): VqaPair {
  return { type, question, answer, answers: new Array<string>(10).fill(answer) };
}

/** The first frame a track bounces while visible, or Infinity. */
function firstVisibleBounce(track: TrackTiming): number {
  const seen = track.bounces.filter((b) => b >= track.appearAt && b < track.disappearAt);
  return seen.length ? Math.min(...seen) : Infinity;
}

/** The two tracks in the alphabetical order of their names. */
function byName(tracks: readonly TrackTiming[]): [TrackTiming, TrackTiming] {
  const [a, b] = [...tracks].sort((x, y) => objectName(x.object as SceneObject).localeCompare(objectName(y.object as SceneObject)));
  return [a, b];
}

/**
 * Order questions of a two-object clip of `frames` frames (none for one object), asked only where the frames' order
 * decides them:
 * - (an even number of frames, as the world's 12) one object appears or disappears part way, at the frame just
 *   before or just after the middle one
 *   (`frames / 2 ± 1`, the middle frame being `frames / 2` as `singleMiddleFrame` picks it): "is the X there at
 *   first?" → "yes" when it disappears, "no" when it appears. Those two change frames give both answers the same
 *   counts of visible frames (frames / 2 ± 1) and the same chance that the middle frame shows the object, so neither a
 *   bag of frames nor the middle frame tells them apart; the other change frames would (an object that appears at
 *   frame 4 of 12 is visible in 8 frames, one that disappears there in 4);
 * - both bounce off a wall while visible, at different frames: "which bounces first, the A or the B?" (when only
 *   one bounces while visible, a bag of frames answers it, so it is not asked).
 * Not asked: "which is there first / leaves first, the A or the B?", which the object visible in more (fewer) frames
 * answers, and the generator never gives the two objects as many visible frames.
 */
export function orderQuestions(tracks: readonly TrackTiming[], frames: number): VqaPair[] {
  if (tracks.length !== 2) return [];
  if (!Number.isInteger(frames) || frames < 2) throw new Error(`orderQuestions: frames must be an integer ≥ 2, got ${JSON.stringify(frames)}`);
  const [a, b] = byName(tracks);
  const name = (t: TrackTiming) => objectName(t.object as SceneObject);
  const out: VqaPair[] = [];
  const middle = Math.floor(frames / 2);
  for (const t of [a, b]) {
    const appears = t.appearAt > 0 && t.disappearAt === frames;
    const disappears = t.appearAt === 0 && t.disappearAt < frames;
    const change = appears ? t.appearAt : disappears ? t.disappearAt : undefined;
    if (frames % 2 === 0 && change !== undefined && Math.abs(change - middle) === 1)
      out.push(exact(`is the ${name(t)} there at first?`, appears ? "no" : "yes", "exist"));
  }
  const [bounceA, bounceB] = [firstVisibleBounce(a), firstVisibleBounce(b)];
  if (Number.isFinite(bounceA) && Number.isFinite(bounceB) && bounceA !== bounceB)
    out.push(exact(`which bounces first, the ${name(a)} or the ${name(b)}?`, name(bounceA < bounceB ? a : b), "relation"));
  return out;
}

/**
 * Audio-visual questions of a two-object clip whose soundtrack holds only
 * `heard`'s sound (index into `tracks`):
 * - "which object do you hear, the A or the B?" → the heard one's name (the picture gives the candidates, the sound decides);
 * - "which way does the object you hear move at first?" → its direction (the sound says which object, the frames how it moves).
 */
export function audioVisualQuestions(tracks: readonly TrackTiming[], heard: number): VqaPair[] {
  if (tracks.length !== 2) throw new Error(`audioVisualQuestions: needs a two-object clip, got ${tracks.length} tracks`);
  if (heard !== 0 && heard !== 1) throw new Error(`audioVisualQuestions: heard must be 0 or 1, got ${JSON.stringify(heard)}`);
  const [a, b] = byName(tracks);
  const name = (t: TrackTiming) => objectName(t.object as SceneObject);
  const source = tracks[heard];
  return [
    exact(`which object do you hear, the ${name(a)} or the ${name(b)}?`, name(source), "exist"),
    exact("which way does the object you hear move at first?", source.direction, "relation"),
  ];
}
