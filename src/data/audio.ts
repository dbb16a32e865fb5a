/**
 * Audio of the world, 16 kHz mono: every object has a sound (its color sets
 * the pitch, its shape the timbre), clips of sound events, spoken words made
 * with the espeak-ng speech synthesiser when it is installed, and soundtracks
 * for video clips (each visible object hums; a bounce rings).
 *
 * The synthesis is plain arithmetic on a seeded generator, so a clip is the
 * same bytes on every machine; speech depends on the installed espeak-ng
 * (its version goes into the dataset card).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Random } from "../util/random";
import type { ColorName, ShapeName } from "./vocabulary";
import type { VideoClip } from "./video";
import { decodeWav } from "../io/wav";

export const SAMPLE_RATE = 16000;

/** Pitch of each color, Hz (a C-major scale from C4). */
export const COLOR_PITCH: Record<ColorName, number> = { red: 262, orange: 294, yellow: 330, green: 392, blue: 440, purple: 523 };

/** The timbre of each shape: how its waveform is built. */
export const SHAPE_TIMBRE: Record<ShapeName, string> = {
  circle: "a pure sine tone",
  square: "a hollow square-wave tone",
  triangle: "a soft triangle-wave tone",
  diamond: "a warbling frequency-modulated tone",
  star: "a ringing bell",
};

/** One sample of the shape's waveform at phase `phase` (cycles) and time t (s). */
function waveform(shape: ShapeName, phase: number, t: number): number {
  const p = 2 * Math.PI * phase;
  switch (shape) {
    case "circle":
      return Math.sin(p);
    case "square": // odd harmonics 1/k, band-limited to 7 terms
      return (4 / Math.PI) * [1, 3, 5, 7, 9, 11, 13].reduce((s, k) => s + Math.sin(k * p) / k, 0) * 0.8;
    case "triangle":
      return (8 / Math.PI ** 2) * [1, 3, 5, 7].reduce((s, k, i) => s + ((i % 2 ? -1 : 1) * Math.sin(k * p)) / (k * k), 0);
    case "diamond":
      return Math.sin(p + 2.5 * Math.sin(2 * Math.PI * 6 * t));
    case "star": // inharmonic partials, the higher ones dying faster
      return 0.6 * Math.sin(p) + 0.3 * Math.sin(2.76 * p) * Math.exp(-8 * t) + 0.2 * Math.sin(5.4 * p) * Math.exp(-14 * t);
    default:
      throw new Error(`waveform: unknown shape ${JSON.stringify(shape)}`);
  }
}

export interface ObjectSoundArgs {
  readonly color: ColorName;
  readonly shape: ShapeName;
  /** Start, seconds. */
  readonly onset: number;
  /** Length, seconds. */
  readonly duration: number;
  /** Peak amplitude. Default 0.5. */
  readonly amplitude?: number;
  /** Pitch multiplier (small jitter between clips). Default 1. */
  readonly detune?: number;
}

/** Adds one object's sound into `out` (in place), with a 10 ms attack and 60 ms release. */
export function addObjectSound(out: Float32Array, args: ObjectSoundArgs): void {
  const frequency = COLOR_PITCH[args.color] * (args.detune ?? 1);
  const amplitude = args.amplitude ?? 0.5;
  const start = Math.max(0, Math.round(args.onset * SAMPLE_RATE));
  const length = Math.round(args.duration * SAMPLE_RATE);
  const attack = 0.01 * SAMPLE_RATE;
  const release = 0.06 * SAMPLE_RATE;
  for (let i = 0; i < length && start + i < out.length; i++) {
    const t = i / SAMPLE_RATE;
    const envelope = Math.min(1, i / attack, (length - i) / release);
    const decay = args.shape === "star" ? Math.exp(-3 * t) : 1;
    out[start + i] += amplitude * envelope * decay * waveform(args.shape, frequency * t, t);
  }
}

/** Adds white noise of standard deviation `level` (Box–Muller on the seeded generator). */
export function addNoise(out: Float32Array, random: Random, level: number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(random.next(), 1e-12);
    const v = random.next();
    const radius = Math.sqrt(-2 * Math.log(u)) * level;
    out[i] += radius * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] += radius * Math.sin(2 * Math.PI * v);
  }
}

/** Keeps samples within [-1, 1] and rounds them to what 16-bit PCM stores, so a written clip reads back equal. */
export function finishClip(out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.max(-1, Math.min(1, out[i])) * 32767) / 32767;
  return out;
}

/** A 1 s clip of one object's sound at a random onset, length, loudness and slight detune, over faint noise. */
export function soundEventClip(random: Random, color: ColorName, shape: ShapeName, seconds = 1): Float32Array {
  const out = new Float32Array(Math.round(seconds * SAMPLE_RATE));
  const onset = random.next() * 0.3 * seconds;
  addObjectSound(out, { color, shape, onset, duration: (0.4 + random.next() * 0.25) * seconds, amplitude: 0.3 + random.next() * 0.3, detune: 0.98 + random.next() * 0.04 });
  addNoise(out, random, 0.005 + random.next() * 0.02);
  return finishClip(out);
}

/** The soundtrack of a video clip lasting `seconds`: each visible object hums softly, a bounce rings louder. */
export function videoSoundtrack(clip: VideoClip, random: Random, seconds = 1): Float32Array {
  const out = new Float32Array(Math.round(seconds * SAMPLE_RATE));
  const frameSeconds = seconds / clip.frames.length;
  for (const track of clip.tracks) {
    const { color, shape } = track.object;
    const onset = track.appearAt * frameSeconds;
    addObjectSound(out, { color, shape, onset, duration: (track.disappearAt - track.appearAt) * frameSeconds, amplitude: 0.12 });
    for (const frame of track.bounces) {
      if (frame >= track.appearAt && frame < track.disappearAt) addObjectSound(out, { color, shape, onset: frame * frameSeconds, duration: 0.12, amplitude: 0.35 });
    }
  }
  addNoise(out, random, 0.005);
  return finishClip(out);
}

/** The installed espeak-ng's version line, or undefined when it is not on PATH. */
export function speechSynthesizer(): string | undefined {
  const result = spawnSync("espeak-ng", ["--version"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/**
 * Speaks `word` with espeak-ng at words-per-minute `speed` and `pitch` (0–99),
 * returning 16 kHz samples (espeak-ng writes 22.05 kHz; resampled here).
 */
export function speak(word: string, speed = 160, pitch = 50, voice = "en-us"): Float32Array {
  if (!/^[a-z ]+$/.test(word)) throw new Error(`speak: only lower-case words are spoken, got ${JSON.stringify(word)}`);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mllm-speak-")), "word.wav");
  try {
    const result = spawnSync("espeak-ng", ["-v", voice, "-s", String(speed), "-p", String(pitch), "-w", file, word], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`speak: espeak-ng failed for ${JSON.stringify(word)}: ${result.stderr || result.error?.message}`);
    const wav = decodeWav(fs.readFileSync(file), `espeak-ng's output for ${JSON.stringify(word)}`);
    return resample(wav.channels[0], wav.sampleRate, SAMPLE_RATE);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

/** Band-limited resampling with a Hann-windowed sinc of 16 zero crossings. */
export function resample(input: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return input.slice();
  const ratio = to / from;
  const cutoff = Math.min(1, ratio); // in units of the input's Nyquist
  const half = 16 / cutoff;
  const out = new Float32Array(Math.floor(input.length * ratio));
  for (let n = 0; n < out.length; n++) {
    const center = n / ratio;
    let sum = 0;
    for (let k = Math.ceil(center - half); k <= Math.floor(center + half); k++) {
      if (k < 0 || k >= input.length) continue;
      const x = (k - center) * cutoff;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const window = 0.5 + 0.5 * Math.cos((Math.PI * (k - center)) / half);
      sum += input[k] * sinc * window * cutoff;
    }
    out[n] = sum;
  }
  return out;
}

/** A 1 s clip of a spoken word at a random onset, speed, pitch and voice, over faint noise. */
export function spokenWordClip(random: Random, word: string, seconds = 1): Float32Array {
  const voices = ["en-us", "en", "en-gb-x-rp"];
  const speech = speak(word, random.int(140, 200), random.int(30, 71), voices[random.int(0, voices.length)]);
  const out = new Float32Array(Math.round(seconds * SAMPLE_RATE));
  const room = Math.max(0, out.length - speech.length);
  const start = random.int(0, Math.min(room, Math.round(0.3 * SAMPLE_RATE)) + 1);
  const gain = (0.5 + random.next() * 0.3) / Math.max(1e-6, speech.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
  for (let i = 0; i < speech.length && start + i < out.length; i++) out[start + i] = speech[i] * gain;
  addNoise(out, random, 0.005 + random.next() * 0.015);
  return finishClip(out);
}

