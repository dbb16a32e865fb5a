/**
 * Multimodal sentiment, clearly synthetic: a drawn face (smiling, frowning or
 * neutral) with a short text that may agree or disagree with it; the label
 * combines both (after multimodal sentiment sets such as CMU-MOSI, Zadeh et
 * al., 2016, where the words and the face must be read together).
 *
 * Label rule: face and text agree → that sentiment; one neutral → the other
 * one; positive against negative → "neutral" (mixed signals cancel).
 */
import { Random } from "../util/random";
import { pick } from "./vocabulary";

export const SENTIMENTS = ["positive", "negative", "neutral"] as const;
export type Sentiment = (typeof SENTIMENTS)[number];

const TEXTS: Record<Sentiment, readonly string[]> = {
  positive: ["what a wonderful day!", "i love this so much.", "this made me really happy.", "best news all week!", "that went perfectly.", "i am so glad we came."],
  negative: ["this is the worst.", "i am so tired of this.", "that was a total disaster.", "nothing works today.", "i really hate waiting.", "what a terrible idea."],
  neutral: ["the meeting is at noon.", "the bus comes every hour.", "i had soup for lunch.", "it is tuesday today.", "the box is on the table.", "we will see tomorrow."],
};

export interface SentimentSample {
  readonly face: Sentiment;
  readonly textSentiment: Sentiment;
  readonly text: string;
  readonly label: Sentiment;
  /** The face's SVG, 64×64. */
  readonly svg: string;
}

/** The combined label (see the header). */
export function combineSentiment(face: Sentiment, text: Sentiment): Sentiment {
  if (face === text) return face;
  if (face === "neutral") return text;
  if (text === "neutral") return face;
  return "neutral";
}

/** The face SVG: head, eyes, brows and a mouth curved by the sentiment. */
export function faceSvg(face: Sentiment, random: Random, canvas = 64): string {
  const skins = ["#ffd27f", "#f1c27d", "#e0ac69", "#c68642", "#ffdbac"];
  const skin = skins[random.int(0, skins.length)];
  const cx = canvas / 2 + random.int(-3, 4);
  const cy = canvas / 2 + random.int(-3, 4);
  const r = 22 + random.int(0, 5);
  const eyeY = cy - r * 0.3;
  const mouthY = cy + r * 0.4;
  const width = r * (0.45 + random.next() * 0.15);
  const bend = face === "positive" ? r * 0.35 : face === "negative" ? -r * 0.35 : 0;
  const mouthStart = face === "negative" ? mouthY + r * 0.1 : mouthY;
  const brow = face === "negative" ? 3 : face === "positive" ? -1 : 0; // inner brow height offset
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${canvas}" height="${canvas}" viewBox="0 0 ${canvas} ${canvas}">`,
    `<rect width="${canvas}" height="${canvas}" fill="#eef3f7"/>`,
    `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${skin}" stroke="#553311" stroke-width="1.5"/>`,
    `<circle cx="${cx - r * 0.38}" cy="${eyeY}" r="2.6" fill="#222"/><circle cx="${cx + r * 0.38}" cy="${eyeY}" r="2.6" fill="#222"/>`,
    `<path d="M ${cx - r * 0.55} ${eyeY - 6} L ${cx - r * 0.2} ${eyeY - 6 + brow}" stroke="#222" stroke-width="1.5"/>`,
    `<path d="M ${cx + r * 0.55} ${eyeY - 6} L ${cx + r * 0.2} ${eyeY - 6 + brow}" stroke="#222" stroke-width="1.5"/>`,
    `<path d="M ${cx - width} ${mouthStart} Q ${cx} ${mouthStart + bend * 2} ${cx + width} ${mouthStart}" stroke="#7a1f1f" stroke-width="2.5" fill="none"/>`,
    `</svg>`,
  ].join("");
}

/** A random face with a text; the text agrees with the face about half the time. */
export function sampleSentiment(random: Random, canvas = 64): SentimentSample {
  const face = SENTIMENTS[random.int(0, 3)];
  const textSentiment = random.next() < 0.5 ? face : SENTIMENTS[random.int(0, 3)];
  const text = pick(random, TEXTS[textSentiment]);
  return { face, textSentiment, text, label: combineSentiment(face, textSentiment), svg: faceSvg(face, random, canvas) };
}
