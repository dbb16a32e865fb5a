/**
 * Time as model input, for the VideoLLaMA lab: which frames of a clip the
 * model sees and at which positions, how a soundtrack is cut into fixed-length
 * segments, and the two input transforms behind the lab's temporal baselines
 * (shuffled frame order, a single middle frame).
 *
 * Paper: Zhang et al., "Video-LLaMA" (2023), §2.1–2.2.
 * Reference: DAMO-NLP-SG/Video-LLaMA `video_llama/processors/video_processor.py`
 * (`load_video`: `sampling="uniform"`), `video_llama/models/ImageBind/data.py`
 * (`load_and_transform_audio_data`: the waveform cut into clips, each clip a log-mel).
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../util/random";
import { whisperLogMelValues } from "../preprocess/whisper_mel";
import { SAMPLE_RATE } from "./audio";

/** The world's clips: 12 frames in 1 s (data/world/videos/CARD.md). */
export const VIDEO_FRAMES_PER_SECOND = 12;

/** Which frames a model sees. */
export interface FrameSample {
  /** Frame indices into the clip, in time order (length = count). */
  readonly indices: readonly number[];
  /** Position ids 0…count − 1 (the rows of the frame position table). */
  readonly positions: readonly number[];
  /** The sampled frames' times in seconds (index / fps). */
  readonly times: readonly number[];
}

/**
 * `count` frames spread uniformly over a clip of `numFrames`: the middle frame
 * of each of `count` equal stretches, index ⌊(k + ½) · numFrames / count⌋.
 * (Video-LLaMA's "uniform" takes the first frame of each stretch,
 * `np.arange(0, vlen, vlen / n_frms)`; the middle keeps the first and last
 * stretches alike.) count = numFrames gives every frame.
 * @param fps frames per second of the clip, for `times`. Default 12 (the world's clips).
 */
export function sampleFrameIndices(numFrames: number, count: number, fps = VIDEO_FRAMES_PER_SECOND): FrameSample {
  if (!Number.isInteger(numFrames) || numFrames < 1)
    throw new Error(`sampleFrameIndices: numFrames must be a positive integer, got ${JSON.stringify(numFrames)}`);
  if (!Number.isInteger(count) || count < 1 || count > numFrames)
    throw new Error(`sampleFrameIndices: count must be an integer in 1…${numFrames} (the clip's frames), got ${JSON.stringify(count)}`);
  if (!(fps > 0)) throw new Error(`sampleFrameIndices: fps must be positive, got ${JSON.stringify(fps)}`);
  const indices = Array.from({ length: count }, (_, k) => Math.floor(((k + 0.5) * numFrames) / count));
  return { indices, positions: indices.map((_, k) => k), times: indices.map((index) => index / fps) };
}

/** What to do with the part of a clip shorter than one segment at its end. */
export type LastSegment = "pad" | "drop";

/** A clip cut into segments. */
export interface AudioSegments {
  /** Each `segmentLength` samples long. */
  readonly segments: readonly Float32Array[];
  /** Position ids 0…S − 1 (the rows of the segment position table). */
  readonly positions: readonly number[];
  /** First sample of each segment in the clip. */
  readonly starts: readonly number[];
}

/**
 * Cuts `samples` into consecutive, non-overlapping segments of `segmentLength`
 * samples. A shorter tail is zero-padded to a full segment (`"pad"`, the
 * default: no sound is lost, the padding is silence) or left out (`"drop"`:
 * every segment is all sound). A clip that is an exact multiple has no tail.
 */
export function segmentAudio(samples: Float32Array, segmentLength: number, last: LastSegment = "pad"): AudioSegments {
  if (!Number.isInteger(segmentLength) || segmentLength < 1)
    throw new Error(`segmentAudio: segmentLength must be a positive integer of samples, got ${JSON.stringify(segmentLength)}`);
  if (last !== "pad" && last !== "drop") throw new Error(`segmentAudio: last must be "pad" or "drop", got ${JSON.stringify(last)}`);
  const full = Math.floor(samples.length / segmentLength);
  const count = full + (last === "pad" && samples.length % segmentLength > 0 ? 1 : 0);
  if (count === 0)
    throw new Error(
      `segmentAudio: a clip of ${samples.length} samples has no full segment of ${segmentLength} and last is "drop"; use "pad" or a shorter segment`,
    );
  const starts = Array.from({ length: count }, (_, k) => k * segmentLength);
  const segments = starts.map((start) => {
    const segment = new Float32Array(segmentLength); // zeros: the padding of a short tail
    segment.set(samples.subarray(start, Math.min(start + segmentLength, samples.length)));
    return segment;
  });
  return { segments, positions: starts.map((_, k) => k), starts };
}

/** Options for {@link segmentLogMel}. */
export interface SegmentLogMelArgs {
  /** Segment length in seconds. Default 0.2 (3200 samples, 20 log-mel frames: 5 audio-encoder tokens of 4 frames). */
  readonly segmentSeconds?: number;
  /** See {@link segmentAudio}. Default "pad". */
  readonly last?: LastSegment;
  /** Log-mel bins M. Default 80 (the audio backbone's). */
  readonly melBins?: number;
  /** Samples between log-mel frames. Default 160 (10 ms at 16 kHz). */
  readonly hopLength?: number;
}

/**
 * A 16 kHz clip → the log-mel of each segment, Whisper's features computed per
 * segment (as ImageBind computes one spectrogram per clip it cuts).
 * @returns values [S, M, Fs] row-major, S segments of Fs = segment samples / hop frames
 */
export function segmentLogMel(
  samples: Float32Array,
  args: SegmentLogMelArgs = {},
): { values: Float32Array; segments: number; melBins: number; frames: number } {
  const seconds = args.segmentSeconds ?? 0.2;
  const melBins = args.melBins ?? 80;
  const hop = args.hopLength ?? 160;
  const length = Math.round(seconds * SAMPLE_RATE);
  if (!(seconds > 0) || length % hop !== 0)
    throw new Error(`segmentLogMel: segmentSeconds must give a whole number of ${hop}-sample hops, got ${JSON.stringify(seconds)}`);
  const frames = length / hop;
  const { segments } = segmentAudio(samples, length, args.last ?? "pad");
  const values = new Float32Array(segments.length * melBins * frames);
  segments.forEach((segment, k) =>
    values.set(whisperLogMelValues(segment, { frames, melBins, hopLength: hop }), k * melBins * frames),
  );
  return { values, segments: segments.length, melBins, frames };
}

/**
 * The shuffled-order baseline's input: the same frames in a random order
 * (never the original one when there are two or more distinct frames), at the
 * same positions, so the model sees every frame but not which came first.
 */
export function shuffledFrameOrder(indices: readonly number[], random: Random): number[] {
  if (indices.length < 2 || new Set(indices).size < 2) return indices.slice();
  for (;;) {
    const shuffled = random.shuffle(indices);
    if (shuffled.some((index, k) => index !== indices[k])) return shuffled;
  }
}

/**
 * The single-frame baseline's input: the middle sampled frame (k = ⌊count / 2⌋)
 * repeated at every position, so the model and its input shape stay the same
 * but the clip shows no motion.
 */
export function singleMiddleFrame(indices: readonly number[]): number[] {
  if (indices.length === 0) throw new Error("singleMiddleFrame: no frame indices");
  return new Array<number>(indices.length).fill(indices[Math.floor(indices.length / 2)]);
}

/**
 * Picks frames of each clip. video: [B, F, C, S, S]; indices: one list for
 * every row, or one list per row (each of the same length F′) → [B, F′, C, S, S]
 */
export function selectFrames(video: tf.Tensor, indices: readonly number[] | readonly (readonly number[])[]): tf.Tensor5D {
  if (video.rank !== 5) throw new Error(`selectFrames: video must be [B, F, C, S, S], got [${video.shape}]`);
  const [B, F, C, S, S2] = video.shape;
  const rows = (typeof indices[0] === "number" ? new Array(B).fill(indices) : indices) as readonly (readonly number[])[];
  if (rows.length !== B) throw new Error(`selectFrames: ${rows.length} index lists for a batch of ${B}`);
  const count = rows[0]?.length ?? 0;
  const flat: number[] = [];
  rows.forEach((row, b) => {
    if (row.length !== count || count === 0)
      throw new Error(`selectFrames: every row needs the same non-zero number of indices; row ${b} has ${row.length}, row 0 ${count}`);
    for (const index of row) {
      if (!Number.isInteger(index) || index < 0 || index >= F)
        throw new Error(`selectFrames: row ${b} has frame index ${JSON.stringify(index)}; the clips have frames 0…${F - 1}`);
      flat.push(b * F + index);
    }
  });
  return tf.tidy(() =>
    tf.gather(video.reshape([B * F, C, S, S2]), tf.tensor1d(flat, "int32")).reshape([B, count, C, S, S2]),
  ) as tf.Tensor5D; // [B·F, C, S, S] gathered → [B, F′, C, S, S]
}
