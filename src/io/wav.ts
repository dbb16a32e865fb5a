/**
 * WAV files through node-wav, with the checks node-wav does not make.
 *
 * node-wav 0.0.2's `decode` reads a Node Buffer's bytes from the wrong place
 * when the Buffer is a slice of a larger pool (small files and base64
 * decodes are), and answers `undefined` for some broken files: both are
 * handled here, and a bad file gets an error naming it.
 */
import * as fs from "fs";

/** Decoded audio. */
export interface Waveform {
  sampleRate: number;
  /** One Float32Array per channel, values in [-1, 1]. */
  channels: Float32Array[];
}

/** Decodes WAV bytes; `name` names them in errors. */
export function decodeWav(bytes: Uint8Array, name = "WAV data"): Waveform {
  if (bytes.length < 44 || String.fromCharCode(...bytes.subarray(0, 4)) !== "RIFF" || String.fromCharCode(...bytes.subarray(8, 12)) !== "WAVE") {
    throw new Error(`${name} is not a WAV file (expected a RIFF/WAVE header, got ${bytes.length} bytes starting ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 4)))})`);
  }
  // A standalone ArrayBuffer: node-wav mishandles views with a byteOffset.
  const standalone = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let decoded: { sampleRate: number; channelData: Float32Array[] } | undefined;
  try {
    decoded = require("node-wav").decode(standalone);
  } catch (error) {
    throw new Error(`${name} is a corrupt WAV file: ${(error as Error).message}`);
  }
  if (!decoded || !decoded.channelData?.length) throw new Error(`${name} is a corrupt WAV file: no audio data could be decoded`);
  return { sampleRate: decoded.sampleRate, channels: decoded.channelData };
}

/** Reads and decodes a WAV file. */
export function readWav(file: string): Waveform {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read WAV file "${file}": ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : (error as Error).message}`);
  }
  return decodeWav(bytes, `"${file}"`);
}

/** 16-bit PCM WAV bytes of mono samples in [-1, 1]. */
export function encodeWav(samples: Float32Array, sampleRate: number): Buffer {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new Error(`encodeWav: sampleRate must be a positive integer, got ${sampleRate}`);
  return Buffer.from(require("node-wav").encode([samples], { sampleRate, float: false, bitDepth: 16 }));
}
