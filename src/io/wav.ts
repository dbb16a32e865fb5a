/**
 * WAV files (RIFF/WAVE, linear PCM 8/16/24/32-bit and IEEE float 32/64-bit),
 * decoded here with every size checked against the file: a truncated file or
 * a chunk whose size lies is an error naming the file, never NaN samples or a
 * huge allocation. Encoding is node-wav's.
 *
 * Reference: the RIFF WAVE format (Microsoft/IBM Multimedia Programming
 * Interface and Data Specifications 1.0, 1991; WAVE_FORMAT_EXTENSIBLE).
 */
import * as fs from "fs";

/** Decoded audio. */
export interface Waveform {
  sampleRate: number;
  /** One Float32Array per channel, values in [-1, 1]. */
  channels: Float32Array[];
}

const PCM = 0x0001;
const IEEE_FLOAT = 0x0003;
const EXTENSIBLE = 0xfffe;

function fourCC(view: DataView, offset: number): string {
  return String.fromCharCode(
    view.getUint8(offset),
    view.getUint8(offset + 1),
    view.getUint8(offset + 2),
    view.getUint8(offset + 3),
  );
}

interface Format {
  float: boolean;
  channels: number;
  sampleRate: number;
  blockAlign: number;
  bitsPerSample: number;
}

function readFormat(view: DataView, offset: number, size: number, name: string): Format {
  if (size < 16) throw new Error(`${name} is a corrupt WAV file: its "fmt " chunk is ${size} bytes; expected at least 16`);
  let tag = view.getUint16(offset, true);
  const channels = view.getUint16(offset + 2, true);
  const sampleRate = view.getUint32(offset + 4, true);
  const blockAlign = view.getUint16(offset + 12, true);
  const bitsPerSample = view.getUint16(offset + 14, true);
  // WAVE_FORMAT_EXTENSIBLE: the real format tag is the first 2 bytes of the sub-format GUID.
  if (tag === EXTENSIBLE && size >= 40) tag = view.getUint16(offset + 24, true);
  if (tag !== PCM && tag !== IEEE_FLOAT)
    throw new Error(`${name} has WAV format tag 0x${tag.toString(16)}; expected PCM (1) or IEEE float (3)`);
  const float = tag === IEEE_FLOAT;
  const supported = float ? [32, 64] : [8, 16, 24, 32];
  if (!supported.includes(bitsPerSample))
    throw new Error(`${name} has ${bitsPerSample}-bit ${float ? "float" : "PCM"} samples; expected ${supported.join(", ")} bits`);
  if (channels < 1) throw new Error(`${name} is a corrupt WAV file: it declares ${channels} channels`);
  if (sampleRate < 1) throw new Error(`${name} is a corrupt WAV file: it declares a sample rate of ${sampleRate} Hz`);
  if (blockAlign !== (channels * bitsPerSample) / 8) {
    throw new Error(
      `${name} is a corrupt WAV file: block size ${blockAlign} bytes does not match ${channels} channels × ${bitsPerSample} bits`,
    );
  }
  return { float, channels, sampleRate, blockAlign, bitsPerSample };
}

/** Integer PCM to [-1, 1] as node-wav scales it (negative values by 2^(n-1), positive by 2^(n-1) − 1), so decodes match it bit for bit. */
function scaled(value: number, half: number): number {
  return value < 0 ? value / half : value / (half - 1);
}

function sampleReader(view: DataView, format: Format): (offset: number) => number {
  if (format.float) return format.bitsPerSample === 32 ? (o) => view.getFloat32(o, true) : (o) => view.getFloat64(o, true);
  switch (format.bitsPerSample) {
    case 8:
      return (o) => scaled(view.getUint8(o) - 128, 128);
    case 16:
      return (o) => scaled(view.getInt16(o, true), 32768);
    case 24:
      return (o) => scaled(view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getInt8(o + 2) << 16), 8388608);
    default:
      return (o) => scaled(view.getInt32(o, true), 2147483648);
  }
}

/** Decodes WAV bytes; `name` names them in errors. */
export function decodeWav(bytes: Uint8Array, name = "WAV data"): Waveform {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 44 || fourCC(view, 0) !== "RIFF" || fourCC(view, 8) !== "WAVE") {
    throw new Error(
      `${name} is not a WAV file (expected a RIFF/WAVE header, got ${bytes.length} bytes starting ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 4)))})`,
    );
  }
  let format: Format | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = fourCC(view, offset);
    const size = view.getUint32(offset + 4, true);
    const start = offset + 8;
    const available = bytes.length - start;
    if (id === "fmt ") {
      if (size > available)
        throw new Error(
          `${name} is a corrupt WAV file: its "fmt " chunk says ${size} bytes, but only ${available} remain (truncated, or a wrong size)`,
        );
      format = readFormat(view, start, size, name);
    } else if (id === "data") {
      if (!format) throw new Error(`${name} is a corrupt WAV file: the "data" chunk comes before any "fmt " chunk`);
      if (size > available) {
        throw new Error(
          `${name} is a corrupt WAV file: its "data" chunk says ${size} bytes, but only ${available} remain (truncated, or a wrong size)`,
        );
      }
      if (size % format.blockAlign !== 0) {
        throw new Error(
          `${name} is a corrupt WAV file: its "data" chunk of ${size} bytes is not a whole number of ${format.blockAlign}-byte sample frames`,
        );
      }
      const frames = size / format.blockAlign;
      const read = sampleReader(view, format);
      const step = format.bitsPerSample / 8;
      const channels = Array.from({ length: format.channels }, () => new Float32Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < format.channels; c++) channels[c][i] = read(start + i * format.blockAlign + c * step);
      }
      for (const channel of channels) {
        if (channel.some((value) => !Number.isFinite(value))) throw new Error(`${name} holds samples that are NaN or infinite`);
      }
      return { sampleRate: format.sampleRate, channels };
    } else if (size > available) {
      throw new Error(
        `${name} is a corrupt WAV file: its ${JSON.stringify(id)} chunk says ${size} bytes, but only ${available} remain (truncated, or a wrong size)`,
      );
    }
    offset = start + size + (size % 2); // chunks are padded to an even size
  }
  throw new Error(`${name} is a corrupt WAV file: ${format ? 'no "data" chunk' : 'no "fmt " chunk'}`);
}

/** Reads and decodes a WAV file. */
export function readWav(file: string): Waveform {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new Error(
      `cannot read WAV file "${file}": ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : (error as Error).message}`,
    );
  }
  return decodeWav(bytes, `"${file}"`);
}

/** How {@link monoSamples} treats audio with more than one channel. */
export type Downmix = "error" | "average" | "first";

/**
 * One channel of samples where mono is expected: mono audio as it is; more
 * channels are an error unless `downmix` says to average them or take the first.
 */
export function monoSamples(wave: Waveform, name: string, downmix: Downmix = "error"): Float32Array {
  if (wave.channels.length === 1 || downmix === "first") return wave.channels[0];
  if (downmix === "average") {
    const out = new Float32Array(wave.channels[0].length);
    for (const channel of wave.channels) for (let i = 0; i < out.length; i++) out[i] += channel[i] / wave.channels.length;
    return out;
  }
  throw new Error(
    `${name} has ${wave.channels.length} channels; expected mono (pass downmix: "average" or "first" to use it anyway)`,
  );
}

/** 16-bit PCM WAV bytes of mono samples in [-1, 1]. */
export function encodeWav(samples: Float32Array, sampleRate: number): Buffer {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0)
    throw new Error(`encodeWav: sampleRate must be a positive integer, got ${sampleRate}`);
  return Buffer.from(require("node-wav").encode([samples], { sampleRate, float: false, bitDepth: 16 }));
}
