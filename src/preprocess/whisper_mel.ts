/**
 * Whisper's audio front end: a log-mel spectrogram of 16 kHz audio padded or
 * trimmed to 30 s — periodic Hann window of n_fft = 400, hop 160, centred
 * frames with reflect padding, power spectrum, Slaney-normalised mel filters
 * (0–8 kHz), log10 clamped at 1e-10, floored at (max − 8), scaled by (x + 4) / 4.
 *
 * Paper: Radford et al., "Robust Speech Recognition via Large-Scale Weak
 * Supervision" (Whisper, 2022). Reference: transformers
 * `models/whisper/feature_extraction_whisper.py`, `audio_utils.py`
 * (`mel_filter_bank`, `spectrogram`); openai/whisper `whisper/audio.py`.
 */
import * as tf from "@tensorflow/tfjs";
import { monoSamples, readWav, type Downmix } from "../io/wav";

/** Options of {@link whisperLogMel}. */
export interface WhisperMelArgs {
  /** Mel bins: 80 (Whisper ≤ large-v2) or 128 (large-v3). Default 80. */
  melBins?: number;
  /** Output frames; the waveform is padded or trimmed to frames · hop samples. Default 3000 (30 s). */
  frames?: number;
  /** Default 16000. */
  sampleRate?: number;
  /** Default 400. */
  nFft?: number;
  /** Default 160. */
  hopLength?: number;
}

/** Slaney's mel scale (librosa's default, `htk=False`). */
function hertzToMel(hertz: number): number {
  const logStep = 27 / Math.log(6.4);
  return hertz >= 1000 ? 15 + Math.log(hertz / 1000) * logStep : (3 * hertz) / 200;
}

function melToHertz(mel: number): number {
  const logStep = Math.log(6.4) / 27;
  return mel >= 15 ? 1000 * Math.exp(logStep * (mel - 15)) : (200 * mel) / 3;
}

/**
 * Triangular mel filters with Slaney area normalisation, as transformers'
 * `mel_filter_bank(norm="slaney", mel_scale="slaney")`.
 * @returns [frequencyBins][melBins], row-major Float64Array
 */
export function melFilterBank(
  frequencyBins: number,
  melBins: number,
  minHertz: number,
  maxHertz: number,
  sampleRate: number,
): Float64Array {
  const melMin = hertzToMel(minHertz);
  const melMax = hertzToMel(maxHertz);
  const filterHertz = Array.from({ length: melBins + 2 }, (_, i) => melToHertz(melMin + ((melMax - melMin) * i) / (melBins + 1)));
  const fftHertz = Array.from({ length: frequencyBins }, (_, i) => (Math.floor(sampleRate / 2) * i) / (frequencyBins - 1));
  const filters = new Float64Array(frequencyBins * melBins);
  for (let f = 0; f < frequencyBins; f++) {
    for (let m = 0; m < melBins; m++) {
      const down = (fftHertz[f] - filterHertz[m]) / (filterHertz[m + 1] - filterHertz[m]);
      const up = (filterHertz[m + 2] - fftHertz[f]) / (filterHertz[m + 2] - filterHertz[m + 1]);
      const area = 2 / (filterHertz[m + 2] - filterHertz[m]);
      filters[f * melBins + m] = Math.max(0, Math.min(down, up)) * area;
    }
  }
  return filters;
}

/**
 * waveform (mono, at `sampleRate`) → log-mel features [1, melBins, frames]
 * as float32 (the shape `WhisperFeatureExtractor` returns for one clip).
 */
export function whisperLogMel(waveform: Float32Array, args: WhisperMelArgs = {}): tf.Tensor3D {
  return tf.tensor3d(whisperLogMelValues(waveform, args), [1, args.melBins ?? 80, args.frames ?? 3000]);
}

/** The same features as a plain array, [melBins, frames] row-major (no tensor). */
export function whisperLogMelValues(waveform: Float32Array, args: WhisperMelArgs = {}): Float32Array {
  const melBins = args.melBins ?? 80;
  const frames = args.frames ?? 3000;
  const sampleRate = args.sampleRate ?? 16000;
  const nFft = args.nFft ?? 400;
  const hop = args.hopLength ?? 160;
  for (const [name, value] of Object.entries({ melBins, frames, sampleRate, nFft, hop })) {
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`whisperLogMel: ${name} must be a positive integer, got ${value}`);
  }
  // Pad with zeros (or trim) to frames · hop samples, as `padding="max_length"` does.
  const samples = frames * hop;
  const audio = new Float64Array(samples);
  audio.set(waveform.length > samples ? waveform.subarray(0, samples) : waveform);
  // Centred frames: reflect-pad nFft/2 on both sides.
  const half = Math.floor(nFft / 2);
  const padded = new Float64Array(samples + 2 * half);
  padded.set(audio, half);
  for (let i = 0; i < half; i++) {
    padded[half - 1 - i] = audio[i + 1];
    padded[half + samples + i] = audio[samples - 2 - i];
  }
  const window = Float64Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft)); // periodic Hann
  const bins = Math.floor(nFft / 2) + 1;
  const cosTable = new Float64Array(bins * nFft);
  const sinTable = new Float64Array(bins * nFft);
  for (let k = 0; k < bins; k++) {
    for (let n = 0; n < nFft; n++) {
      const angle = (2 * Math.PI * ((k * n) % nFft)) / nFft;
      cosTable[k * nFft + n] = Math.cos(angle);
      sinTable[k * nFft + n] = Math.sin(angle);
    }
  }
  const filters = melFilterBank(bins, melBins, 0, 8000, sampleRate);
  const logMel = new Float64Array(melBins * frames);
  const frame = new Float64Array(nFft);
  const power = new Float64Array(bins);
  let maximum = -Infinity;
  // STFT gives frames + 1 columns; Whisper drops the last.
  for (let t = 0; t < frames; t++) {
    let silent = true;
    for (let n = 0; n < nFft; n++) {
      frame[n] = padded[t * hop + n] * window[n];
      if (frame[n] !== 0) silent = false;
    }
    for (let k = 0; k < bins; k++) {
      if (silent) {
        power[k] = 0;
        continue;
      }
      let real = 0;
      let imaginary = 0;
      const row = k * nFft;
      for (let n = 0; n < nFft; n++) {
        real += frame[n] * cosTable[row + n];
        imaginary -= frame[n] * sinTable[row + n];
      }
      power[k] = real * real + imaginary * imaginary;
    }
    for (let m = 0; m < melBins; m++) {
      let energy = 0;
      for (let k = 0; k < bins; k++) energy += filters[k * melBins + m] * power[k];
      const value = Math.log10(Math.max(energy, 1e-10));
      logMel[m * frames + t] = value;
      if (value > maximum) maximum = value;
    }
  }
  const out = new Float32Array(melBins * frames);
  for (let i = 0; i < out.length; i++) out[i] = (Math.max(logMel[i], maximum - 8) + 4) / 4;
  return out;
}

/**
 * A WAV file → Whisper features [1, melBins, frames]; the file must be at
 * `sampleRate` and mono (more channels are an error unless `downmix` says
 * "average" or "first").
 */
export function whisperLogMelFromWav(file: string, args: WhisperMelArgs & { downmix?: Downmix } = {}): tf.Tensor3D {
  const wav = readWav(file);
  const rate = args.sampleRate ?? 16000;
  if (wav.sampleRate !== rate)
    throw new Error(`whisperLogMel: ${file} is sampled at ${wav.sampleRate} Hz, expected ${rate} Hz (resample it first)`);
  return whisperLogMel(monoSamples(wav, `whisperLogMel: ${file}`, args.downmix), args);
}
