/**
 * Audio in the notebook: a waveform as an HTML audio player with the WAV
 * (made with node-wav) embedded, so it plays in saved notebooks too.
 */
import * as tf from "@tensorflow/tfjs";
import { escapeHtml, Rich } from "./rich";
import { encodeWav } from "../src/io/wav";

/** Options for {@link audio}. */
export interface AudioArgs {
  /** Samples per second. Required for tensors and arrays. */
  sampleRate: number;
  /** Text shown with the player. */
  caption?: string;
}

/** Encodes a mono waveform in [-1, 1] as 16-bit PCM WAV bytes. */
export { encodeWav };

/** Shows a waveform ([T] tensor or Float32Array, values in [-1, 1]) as an audio player. */
export async function audio(waveform: tf.Tensor | Float32Array, args: AudioArgs): Promise<Rich> {
  let samples: Float32Array;
  if (waveform instanceof Float32Array) samples = waveform;
  else {
    if (waveform.rank !== 1) throw new Error(`audio: expected a [T] waveform, got shape [${waveform.shape.join(", ")}]`);
    samples = Float32Array.from(await waveform.data());
  }
  const bytes = encodeWav(samples, args.sampleRate);
  const seconds = (samples.length / args.sampleRate).toFixed(2);
  const caption = args.caption ? `${args.caption}: ` : "";
  const text = `${caption}<audio ${seconds} s at ${args.sampleRate} Hz, ${samples.length} samples>`;
  const markup =
    `<figure style="margin:0">${args.caption ? `<figcaption>${escapeHtml(args.caption)}</figcaption>` : ""}` +
    `<audio controls preload="metadata" src="data:audio/wav;base64,${bytes.toString("base64")}"></audio></figure>`;
  return new Rich({ "text/plain": text, "text/html": markup });
}
