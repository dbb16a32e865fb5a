/** safetensors read/write: every dtype, sharded checkpoints, and broken files named in errors. */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  SafetensorsFile,
  Checkpoint,
  saveSafetensors,
  saveCheckpoint,
  halfToFloat,
  floatToHalf,
  floatToBfloat16,
} from "../src/io/safetensors";
import { loadLlama } from "../src/io/pretrained";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const temp = () => scratch("safetensors-");

function writeRaw(file: string, header: object, data: Uint8Array): void {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, data]));
}

describe("safetensors", () => {
  it("round-trips every dtype", async () => {
    const file = path.join(temp(), "all.safetensors");
    const values = [0, 1, -2, 3.5, 65504, -0.000061035156];
    await saveSafetensors(
      file,
      {
        f32: { dtype: "F32", shape: [2, 3], data: values },
        f16: { dtype: "F16", shape: [6], data: values },
        bf16: { dtype: "BF16", shape: [6], data: [0, 1, -2, 3.5, 65536, -0.5] },
        i32: { dtype: "I32", shape: [3], data: [-7, 0, 2147483647] },
        i64: { dtype: "I64", shape: [3], data: [-7, 0, 123456789] },
        u8: { dtype: "U8", shape: [3], data: [0, 128, 255] },
        bool: { dtype: "BOOL", shape: [2], data: [1, 0] },
        tensor: tf.tensor2d([
          [1, 2],
          [3, 4],
        ]),
      },
      { metadata: { format: "pt" } },
    );
    const read = SafetensorsFile.open(file);
    expect(read.metadata).toEqual({ format: "pt" });
    expect(Array.from(read.raw("f32").data)).toEqual(Array.from(Float32Array.from(values)));
    expect(Array.from(read.raw("f16").data)).toEqual(values.map((v) => halfToFloat(floatToHalf(v))));
    expect(Array.from(read.raw("f16").data).slice(0, 5)).toEqual([0, 1, -2, 3.5, 65504]);
    expect(Array.from(read.raw("bf16").data)).toEqual([0, 1, -2, 3.5, 65536, -0.5]);
    expect(Array.from(read.raw("i32").data)).toEqual([-7, 0, 2147483647]);
    expect(Array.from(read.raw("i64").data)).toEqual([-7, 0, 123456789]);
    expect(Array.from(read.raw("u8").data)).toEqual([0, 128, 255]);
    const bool = read.tensor("bool");
    expect(bool.dtype).toBe("bool");
    expect(Array.from(await bool.data())).toEqual([1, 0]);
    const tensor = read.tensor("tensor");
    expect(tensor.shape).toEqual([2, 2]);
    expect(Array.from(await tensor.data())).toEqual([1, 2, 3, 4]);
    tf.dispose([bool, tensor]);
    read.close();
  });

  it("rounds to half and bfloat16 to nearest even, as torch does", () => {
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(1e6)).toBe(0x7c00); // overflow → inf
    expect(floatToBfloat16(1 + 2 ** -8)).toBe(0x3f80);
    expect(floatToBfloat16(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });

  it("rejects an I64 value outside int32, naming the tensor", async () => {
    const file = path.join(temp(), "big.safetensors");
    await saveSafetensors(file, { big: { dtype: "I64", shape: [1], data: new BigInt64Array([2n ** 40n]) } });
    expect(() => SafetensorsFile.open(file).raw("big")).toThrow(/"big".*does not fit int32/);
  });

  it("writes and reads a sharded checkpoint", async () => {
    const directory = temp();
    const tensors: Record<string, tf.Tensor> = {};
    for (let i = 0; i < 5; i++) tensors[`layer.${i}.weight`] = tf.fill([16, 16], i);
    const files = await saveCheckpoint(directory, tensors, { maxShardBytes: 2 * 16 * 16 * 4 });
    expect(files).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    const checkpoint = Checkpoint.open(directory);
    expect(checkpoint.keys().sort()).toEqual(Object.keys(tensors).sort());
    const third = checkpoint.tensor("layer.3.weight");
    expect((await third.data())[0]).toBe(3);
    third.dispose();
    checkpoint.close();
    tf.dispose(Object.values(tensors));
  });

  it("names the file and the problem for broken files", () => {
    const directory = temp();
    const file = path.join(directory, "bad.safetensors");
    fs.writeFileSync(file, Buffer.from([1, 2, 3]));
    expect(() => SafetensorsFile.open(file)).toThrow(/bad\.safetensors is 3 bytes/);
    writeRaw(file, { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8));
    expect(() => SafetensorsFile.open(file)).toThrow(/"a": data ends at byte 16 but the file has 8 bytes of data \(truncated\)/);
    writeRaw(file, { a: { dtype: "F32", shape: [4], data_offsets: [0, 12] } }, new Uint8Array(16));
    expect(() => SafetensorsFile.open(file)).toThrow(/"a": data_offsets \[0,12\] span 12 bytes but F32 \[4\] needs 16/);
    writeRaw(
      file,
      { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(16),
    );
    expect(() => SafetensorsFile.open(file)).toThrow(/"a" and "b" overlap/);
    writeRaw(file, { a: { dtype: "Q4", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(() => SafetensorsFile.open(file)).toThrow(/"a": unsupported dtype "Q4"/);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(4n);
    fs.writeFileSync(file, Buffer.concat([length, Buffer.from("{no}")]));
    expect(() => SafetensorsFile.open(file)).toThrow(/header that is not valid JSON/);
    length.writeBigUInt64LE(1n << 40n);
    fs.writeFileSync(file, Buffer.concat([length, Buffer.from("{}")]));
    expect(() => SafetensorsFile.open(file)).toThrow(/declares a \d+-byte header but the file is 10 bytes/);
    expect(() => SafetensorsFile.open(path.join(directory, "missing.safetensors"))).toThrow(
      /cannot open .*missing\.safetensors: ENOENT/,
    );
  });

  it("a checkpoint missing a tensor or with a mis-shaped one fails to load, naming both", async () => {
    const source = path.join(__dirname, "fixtures/hf/llama/model");
    const directory = temp();
    fs.copyFileSync(path.join(source, "config.json"), path.join(directory, "config.json"));
    const checkpoint = Checkpoint.open(source);
    const tensors: Record<string, tf.Tensor> = {};
    for (const key of checkpoint.keys()) if (key !== "model.norm.weight") tensors[key] = checkpoint.tensor(key);
    checkpoint.close();
    tensors["lm_head.weight"].dispose();
    tensors["lm_head.weight"] = tf.zeros([3, 64]);
    await saveSafetensors(path.join(directory, "model.safetensors"), tensors);
    tf.dispose(Object.values(tensors));
    const before = tf.memory().numTensors;
    expect(() => loadLlama(directory)).toThrow(
      /cannot load .*: missing "model\.norm\.weight" \[64\]; "lm_head\.weight" is \[3,64\] but the model expects \[128,64\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
