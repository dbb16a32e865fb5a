/** The attributes of kernel `MllmDequantizeBlockwise`. */
export interface DequantizeAttrs {
  /** 4 or 8. */
  bits: number;
  /** Number of values. */
  count: number;
  /** Values per absmax. */
  blockSize: number;
}

/** Bytes (any length) → int32 words (zero-padded to a multiple of 4 bytes). */
export function bytesToWords(bytes: Uint8Array): Int32Array {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  return new Int32Array(padded.buffer);
}
