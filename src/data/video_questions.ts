/**
 * Questions about a clip that need time or sound, derived exactly from its
 * tracks: **order** ("which is there first, the X or the Y?", "which bounces
 * first …?") and **audio-visual** ("which object do you hear …?", "which way
 * does the object you hear move at first?"). The stored clips' questions
 * (video.ts) ask direction, speed, bounce, disappearance and count; these two
 * kinds are computed from the same annotations (`tracks`), so the committed
 * world (and the language corpus and tokenizer made from it) stays as it is.
 *
 * Order questions follow CLEVRER's temporal questions (Yi et al., 2020);
 * the audio-visual ones, sound-source questions in the manner of AVQA (Yang et
 * al., 2022) and Music-AVQA (Li et al., 2022): the soundtrack holds only one of
 * the two objects' sounds, so the picture alone cannot say which is heard.
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
 * "red circle"]), or undefined for an open question. The order and "which object do you hear" questions offer theirs.
 */
export function offeredCandidates(question: string): [string, string] | undefined {
  const match = /, the ([a-z ]+?) or the ([a-z ]+)\?$/.exec(question);
  return match ? [match[1], match[2]] : undefined;
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
 * Order questions of a two-object clip of `frames` frames (none for one object):
 * - one appears part way: "which is there first, the A or the B?" → the other;
 * - one disappears part way: "which leaves first, the A or the B?" → that one;
 * - they bounce at different frames (or only one bounces): "which bounces first, the A or the B?".
 */
export function orderQuestions(tracks: readonly TrackTiming[], frames: number): VqaPair[] {
  if (tracks.length !== 2) return [];
  const [a, b] = byName(tracks);
  const name = (t: TrackTiming) => objectName(t.object as SceneObject);
  const pair = `the ${name(a)} or the ${name(b)}`;
  const out: VqaPair[] = [];
  if (a.appearAt !== b.appearAt) out.push(exact(`which is there first, ${pair}?`, name(a.appearAt < b.appearAt ? a : b), "relation"));
  const leaves = (t: TrackTiming) => (t.disappearAt < frames ? t.disappearAt : Infinity);
  if (leaves(a) !== leaves(b)) out.push(exact(`which leaves first, ${pair}?`, name(leaves(a) < leaves(b) ? a : b), "relation"));
  const [bounceA, bounceB] = [firstVisibleBounce(a), firstVisibleBounce(b)];
  if (bounceA !== bounceB) out.push(exact(`which bounces first, ${pair}?`, name(bounceA < bounceB ? a : b), "relation"));
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
