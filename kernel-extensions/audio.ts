/**
 * Audio in the notebook: a waveform as an HTML audio player with the WAV
 * (made with node-wav) embedded, so it plays in saved notebooks too, shown
 * with its waveform (SVG) and its log-mel spectrogram (Whisper's features,
 * viridis, low frequencies at the bottom). The spectrogram is also the
 * output's static PNG.
 */
import { loadSharp } from "../src/util/sharp";
import * as tf from "@tensorflow/tfjs";
import { escapeHtml, Rich } from "./rich";
import { encodeWav, monoSamples, readWav, type Downmix } from "../src/io/wav";
import { whisperLogMelValues } from "../src/preprocess/whisper_mel";
import { chartSvg, downsampleIndices } from "./chart";
import { colorize } from "./colormap";

/** Options for {@link audio}. */
export interface AudioArgs {
  /** Samples per second. Required for tensors and arrays; read from the file for WAV paths. */
  sampleRate?: number;
  /** Text shown with the player. */
  caption?: string;
  /** Draw the waveform and the log-mel spectrogram. Default true. */
  pictures?: boolean;
  /** Longest audio embedded; longer audio is cut, with a note. Default 60 s. */
  maxSeconds?: number;
  /** A WAV file with more than one channel: "average" or "first"; by default it is an error. */
  downmix?: Downmix;
}

/** Encodes a mono waveform in [-1, 1] as 16-bit PCM WAV bytes. */
export { encodeWav };

/** The log-mel spectrogram of a waveform as PNG: mel bins bottom (low) to top (high), 10 ms per column. */
export async function logMelPicture(
  samples: Float32Array,
  sampleRate: number,
  melBins = 80,
): Promise<{ png: Buffer; width: number; height: number; frames: number }> {
  const hopLength = Math.round(sampleRate / 100);
  const frames = Math.max(1, Math.min(3000, Math.ceil(samples.length / hopLength)));
  const values = whisperLogMelValues(samples, { melBins, frames, sampleRate, nFft: Math.round(sampleRate * 0.025), hopLength }); // [melBins, frames]
  const flipped = new Float32Array(values.length);
  for (let m = 0; m < melBins; m++) flipped.set(values.subarray(m * frames, (m + 1) * frames), (melBins - 1 - m) * frames);
  const sharp = loadSharp();
  const scaleX = Math.max(1, Math.floor(480 / frames));
  const width = frames * scaleX;
  const height = melBins * 2;
  const png = await sharp(Buffer.from(colorize(flipped)), { raw: { width: frames, height: melBins, channels: 3 } })
    .resize(width, height, { kernel: "nearest", fit: "fill" })
    .png({ compressionLevel: 9 })
    .toBuffer();
  return { png, width, height, frames };
}

/** The waveform as an SVG chart (min/max per bucket when long). */
export function waveformSvg(samples: Float32Array, sampleRate: number, width = 480): string {
  const kept = downsampleIndices(samples.length, samples, 1200);
  return chartSvg({
    traces: [{ name: "waveform", kind: "line", x: kept.map((i) => i / sampleRate), y: kept.map((i) => samples[i]) }],
    xLabel: "seconds",
    width,
    height: 140,
  });
}

/** Shows a waveform ([T] tensor or Float32Array in [-1, 1], or a WAV file) as a player with its pictures. */
export async function audio(waveform: tf.Tensor | Float32Array | string, args: AudioArgs = {}): Promise<Rich> {
  let samples: Float32Array;
  let sampleRate = args.sampleRate;
  let source = "";
  if (typeof waveform === "string") {
    const wav = readWav(waveform);
    samples = monoSamples(wav, `audio: ${waveform}`, args.downmix);
    sampleRate ??= wav.sampleRate;
    if (wav.sampleRate !== sampleRate)
      throw new Error(`audio: ${waveform} is at ${wav.sampleRate} Hz, but sampleRate ${sampleRate} was given`);
    source = `${waveform} `;
  } else if (waveform instanceof Float32Array) samples = waveform;
  else if (waveform instanceof tf.Tensor) {
    if (waveform.rank !== 1) throw new Error(`audio: expected a [T] waveform, got shape [${waveform.shape.join(", ")}]`);
    samples = Float32Array.from(await waveform.data());
  } else throw new Error(`audio: expected a [T] tensor, a Float32Array or a WAV path, got ${typeof waveform}`);
  if (sampleRate === undefined) throw new Error("audio: sampleRate is required for tensors and arrays");
  if (!(Number.isInteger(sampleRate) && sampleRate > 0))
    throw new Error(`audio: sampleRate must be a positive integer, got ${sampleRate}`);
  const maxSamples = Math.round((args.maxSeconds ?? 60) * sampleRate);
  const note =
    samples.length > maxSamples
      ? `cut from ${(samples.length / sampleRate).toFixed(1)} s to the first ${args.maxSeconds ?? 60} s`
      : "";
  if (note) samples = samples.subarray(0, maxSamples);
  const bytes = encodeWav(samples, sampleRate);
  const seconds = (samples.length / sampleRate).toFixed(2);
  const caption = args.caption ? `${args.caption}: ` : "";
  const text = `${caption}<audio ${source}${seconds} s at ${sampleRate} Hz, ${samples.length} samples${note ? `; ${note}` : ""}>`;
  const parts = [
    `<figure style="margin:0">`,
    args.caption ? `<figcaption>${escapeHtml(args.caption)}</figcaption>` : "",
    `<audio controls preload="metadata" src="data:audio/wav;base64,${bytes.toString("base64")}"></audio>`,
    note ? `<div style="font-size:11px;color:#666">${escapeHtml(note)}</div>` : "",
  ];
  const data: Record<string, unknown> & { "text/plain": string } = { "text/plain": text };
  const metadata: Record<string, unknown> = {};
  if ((args.pictures ?? true) && samples.length > 0) {
    const mel = await logMelPicture(samples, sampleRate);
    parts.push(
      `<div>${waveformSvg(samples, sampleRate, mel.width)}</div>`,
      `<div style="font-size:11px">log-mel spectrogram (80 bins, 10 ms frames)</div><img src="data:image/png;base64,${mel.png.toString("base64")}" width="${mel.width}" height="${mel.height}"/>`,
    );
    data["image/png"] = mel.png.toString("base64");
    metadata["image/png"] = { width: mel.width, height: mel.height };
  }
  parts.push(`</figure>`);
  data["text/html"] = parts.join("");
  return new Rich(data, metadata);
}
