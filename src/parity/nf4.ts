/**
 * Parity of 4-bit quantization with bitsandbytes: a folder with `nf4.json`
 * (`nf4_code`, and `cases` of weight, shape, blocksize, packed bytes, absmax
 * and dequantized values). Packed bytes and absmax must be identical; the
 * dequantized values (through the engine's kernel) within 1e-7.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { quantize4bit, NF4_CODE } from "../peft/quantize_4bit";
import { QuantizedWeight4bit } from "../peft/quantized_weight";
import { compareExact, type ParityResult } from "./compare";

export async function runNf4Parity(directory: string): Promise<ParityResult[]> {
  const file = path.join(directory, "nf4.json");
  let fixture: any;
  try {
    fixture = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`parity: cannot read ${file}: ${(error as Error).message}`);
  }
  if (!fixture.cases || typeof fixture.cases !== "object") throw new Error(`parity: ${file} has no "cases" object`);
  const results: ParityResult[] = [];
  if (Array.isArray(fixture.nf4_code)) {
    const codeDifference = Math.max(...fixture.nf4_code.map((value: number, i: number) => Math.abs(value - NF4_CODE[i])));
    results.push({
      name: "nf4_code",
      maxAbs: codeDifference,
      relative: codeDifference,
      tolerance: 0,
      ok: codeDifference === 0 && fixture.nf4_code.length === 16,
      shape: [16],
    });
  }
  for (const [name, data] of Object.entries<any>(fixture.cases)) {
    for (const field of ["weight", "shape", "blocksize", "packed", "absmax", "dequantized"]) {
      if (data[field] === undefined) throw new Error(`parity: ${file}, case "${name}" has no "${field}"`);
    }
    const state = quantize4bit(Float32Array.from(data.weight), data.shape, { type: "nf4", blockSize: data.blocksize });
    results.push(compareExact(`${name}.packed`, state.packed, data.packed, [state.packed.length]));
    results.push(compareExact(`${name}.absmax`, state.absmax!, Float32Array.from(data.absmax), [state.absmax!.length]));
    const weight = new QuantizedWeight4bit(
      data.shape.length === 2 ? state : { ...state, shape: [1, state.shape.reduce((a: number, b: number) => a * b, 1)] },
    );
    const restored = weight.dequantize();
    const values = (await restored.data()) as Float32Array;
    tf.dispose(restored);
    weight.dispose();
    const expected = Float32Array.from(data.dequantized);
    let maxAbs = 0;
    for (let i = 0; i < expected.length; i++) maxAbs = Math.max(maxAbs, Math.abs(values[i] - expected[i]));
    if (values.length !== expected.length) maxAbs = Infinity;
    results.push({
      name: `${name}.dequantized (${tf.getBackend()})`,
      maxAbs,
      relative: maxAbs,
      tolerance: 1e-7,
      ok: maxAbs <= 1e-7,
      shape: [expected.length],
    });
  }
  return results;
}
