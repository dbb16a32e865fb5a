/**
 * Lab 03 diagnostic (docs/lab03-plan.md, "Sixth round" and "Seventh round"): how much of the derived order questions
 * (`orderQuestions`: "is the X there at first?", "which bounces first, the A or the B?") readers answer that
 * never see the frames' order. Each reader is given, per object (the question's objects, in its name order), only what
 * its baseline still shows, and answers with the majority answer of everything it can tell apart, fitted on the same
 * clips: an upper bound for any reader of those features (a model shown that view may see more, e.g. where each object is).
 * - **bag of frames** (the shuffled-frames baseline): in how many frames the object is visible, and how many times it
 *   bounces while visible (taken from the annotation, generously: a bag of frames may show an object at a wall, not
 *   when);
 * - **middle frame** (the single-middle-frame baseline): whether the middle frame shows the object;
 * - **both**: the two together.
 * Their accuracy is what a model reaches from shuffled frames or the middle frame if it reads them that well, and so
 * what is left for the frames' order to add. Where a reader is near ½ the questions need the order.
 *
 * `node bench/video_order_shortcut.js [CLIPS=5000] [SEED=27]` (fresh clips of the world's generator). Last line
 * `RESULT {json}`: per kind of question and over all of them, each reader's accuracy and the count.
 */
"use strict";
const path = require("path");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { sampleVideo } = dist("data/video");
const { orderQuestions } = dist("data/video_questions");
const { singleMiddleFrame } = dist("data/temporal_sampling");
const { objectName } = dist("data/captions");
const { Random } = dist("util/random");

const [clips = "5000", seed = "27"] = process.argv.slice(2);
const FRAMES = 12;
const MIDDLE = singleMiddleFrame(Array.from({ length: FRAMES }, (_, f) => f))[0];
const random = new Random(Number(seed));
const visibleFrames = (track) => track.disappearAt - track.appearAt;
const bouncesWhileVisible = (track) => track.bounces.filter((f) => f >= track.appearAt && f < track.disappearAt).length;
const visibleInMiddle = (track) => MIDDLE >= track.appearAt && MIDDLE < track.disappearAt;
const READERS = {
  bag_of_frames: (t) => [visibleFrames(t), bouncesWhileVisible(t)],
  middle_frame: (t) => [visibleInMiddle(t)],
  both: (t) => [visibleFrames(t), bouncesWhileVisible(t), visibleInMiddle(t)],
};

/** The question's kind, and the tracks it is about in the order the question names them. */
function questionObjects(question, tracks) {
  const byName = (name) => {
    const track = tracks.find((t) => objectName(t.object) === name);
    if (!track)
      throw new Error(`video_order_shortcut: ${JSON.stringify(question)} names ${JSON.stringify(name)}, not in the clip`);
    return track;
  };
  const pair = /^(which bounces first), the ([a-z ]+?) or the ([a-z ]+)\?$/.exec(question);
  if (pair) return { kind: pair[1], objects: [byName(pair[2]), byName(pair[3])] };
  const one = /^is the ([a-z ]+) there at first\?$/.exec(question);
  if (one) return { kind: "is the X there at first", objects: [byName(one[1]), tracks.find((t) => t !== byName(one[1]))] };
  throw new Error(`video_order_shortcut: an order question of an unknown kind: ${JSON.stringify(question)}`);
}

// For each kind and reader: what the reader sees → how often each answer is right ("yes"/"no", or the first or
// second named object).
const seen = {};
for (let n = 0; n < Number(clips); n++) {
  const clip = sampleVideo(random, FRAMES);
  for (const q of orderQuestions(clip.tracks, FRAMES)) {
    const { kind, objects } = questionObjects(q.question, clip.tracks);
    const answer =
      kind === "which bounces first" ? (objectName(objects[0].object) === q.answer ? "first named" : "second named") : q.answer;
    for (const [reader, view] of Object.entries(READERS)) {
      const key = JSON.stringify(objects.map(view));
      const table = ((seen[kind] ??= {})[reader] ??= new Map());
      const counts = table.get(key) ?? {};
      counts[answer] = (counts[answer] ?? 0) + 1;
      table.set(key, counts);
    }
  }
}
const result = {};
const total = { questions: 0 };
for (const [kind, readers] of Object.entries(seen)) {
  result[kind] = {};
  for (const [reader, table] of Object.entries(readers)) {
    let right = 0;
    let questions = 0;
    for (const counts of table.values()) {
      const values = Object.values(counts);
      right += Math.max(...values);
      questions += values.reduce((s, v) => s + v, 0);
    }
    result[kind][reader] = +(right / questions).toFixed(3);
    result[kind].questions = questions;
    total[reader] = (total[reader] ?? 0) + right;
  }
  total.questions += result[kind].questions;
}
result.all = { questions: total.questions };
for (const reader of Object.keys(READERS)) result.all[reader] = +(total[reader] / total.questions).toFixed(3);
for (const [kind, r] of Object.entries(result))
  console.log(
    `${kind} (${r.questions}): ${Object.keys(READERS)
      .map((reader) => `${reader} ${r[reader]}`)
      .join(", ")}`,
  );
console.log("RESULT", JSON.stringify({ clips: Number(clips), seed: Number(seed), ...result }));
