/**
 * safetensors: read and write the checkpoint format of Hugging Face.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`,
 * offsets relative to the end of the header), then the tensors' bytes.
 * Reads go through a file descriptor, one tensor at a time, so a checkpoint
 * larger than memory can be opened and read selectively. Every header entry is
 * checked before any data is read: dtype, shape, offsets within the file,
 * byte count = element count × dtype size, no overlaps.
 *
 * Spec and reference: https://github.com/huggingface/safetensors (`safetensors/src/tensor.rs`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";

/** The dtypes this reader and writer handle. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32" | "I64" | "U8" | "I8" | "BOOL" | "F64";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, I8: 1, BOOL: 1 };

/** One header entry. */
export interface TensorInfo {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Byte range relative to the start of the data section. */
  readonly dataOffsets: readonly [number, number];
}

/** A tensor as stored, before conversion to tfjs: typed array in the stored dtype's JS counterpart. */
export interface RawTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** F32/F16/BF16/F64 → Float32Array (converted); I32/I64 → Int32Array (I64 range-checked); U8/BOOL → Uint8Array; I8 → Int8Array. */
  readonly data: Float32Array | Int32Array | Uint8Array | Int8Array;
}

/** Header JSON is capped so a corrupt length cannot make us allocate gigabytes. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/** IEEE half → float. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const floatView = new Float32Array(1);
const bitsView = new Uint32Array(floatView.buffer);

/** float → IEEE half bits, round to nearest even (as torch's `.half()`). */
export function floatToHalf(value: number): number {
  floatView[0] = value;
  const x = bitsView[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000; // implicit 1
    const shift = 14 - e;
    let half = mantissa >> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // may carry into the exponent: correct
  return sign | half;
}

/** float → bfloat16 bits, round to nearest even (as torch's `.bfloat16()`). */
export function floatToBfloat16(value: number): number {
  floatView[0] = value;
  const x = bitsView[0];
  if (Number.isNaN(value)) return ((x >>> 16) | 0x40) & 0xffff;
  const rounding = 0x7fff + ((x >>> 16) & 1);
  return ((x + rounding) >>> 16) & 0xffff;
}

/** bytes: a tensor's data in its own ArrayBuffer (offset 0, so every typed view is aligned). */
function decode(info: TensorInfo, bytes: Uint8Array, where: string): RawTensor["data"] {
  const n = elementCount(info.shape);
  const buffer = bytes.buffer;
  switch (info.dtype) {
    case "F32":
      return new Float32Array(buffer, 0, n);
    case "F64":
      return Float32Array.from(new Float64Array(buffer, 0, n));
    case "F16": {
      const halves = new Uint16Array(buffer, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(halves[i]);
      return out;
    }
    case "BF16": {
      const halves = new Uint16Array(buffer, 0, n);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
      return out;
    }
    case "I32":
      return new Int32Array(buffer, 0, n);
    case "I64": {
      const wide = new BigInt64Array(buffer, 0, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const value = wide[i];
        if (value > 2147483647n || value < -2147483648n)
          throw new Error(`${where}: I64 value ${value} at element ${i} does not fit int32 (tfjs's integer type)`);
        out[i] = Number(value);
      }
      return out;
    }
    case "U8":
    case "BOOL":
      return new Uint8Array(buffer, 0, n);
    case "I8":
      return new Int8Array(buffer, 0, n);
  }
}

/** One open `.safetensors` file. Close it with {@link SafetensorsFile.close}. */
export class SafetensorsFile {
  readonly path: string;
  /** `__metadata__` of the header (string → string). */
  readonly metadata: Readonly<Record<string, string>>;
  private readonly entries: Map<string, TensorInfo>;
  private readonly dataStart: number;
  private fd: number | undefined;

  private constructor(
    filePath: string,
    fd: number,
    entries: Map<string, TensorInfo>,
    metadata: Record<string, string>,
    dataStart: number,
  ) {
    this.path = filePath;
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  /** Opens and validates the header; reads no tensor data. */
  static open(filePath: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(filePath, "r");
    } catch (error) {
      throw new Error(
        `safetensors: cannot open ${filePath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    try {
      const fileSize = fs.fstatSync(fd).size;
      if (fileSize < 8) throw new Error(`safetensors: ${filePath} is ${fileSize} bytes, too short for the 8-byte header length`);
      const lengthBytes = Buffer.alloc(8);
      fs.readSync(fd, lengthBytes, 0, 8, 0);
      const headerLength = Number(lengthBytes.readBigUInt64LE(0));
      if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > fileSize) {
        throw new Error(
          `safetensors: ${filePath} declares a ${headerLength}-byte header but the file is ${fileSize} bytes (truncated or not a safetensors file)`,
        );
      }
      const headerBytes = Buffer.alloc(headerLength);
      fs.readSync(fd, headerBytes, 0, headerLength, 8);
      let header: Record<string, any>;
      try {
        header = JSON.parse(headerBytes.toString("utf8"));
      } catch (error) {
        throw new Error(`safetensors: ${filePath} has a header that is not valid JSON (${(error as Error).message})`);
      }
      if (header === null || typeof header !== "object" || Array.isArray(header))
        throw new Error(`safetensors: ${filePath} header is not a JSON object`);
      const dataStart = 8 + headerLength;
      const dataSize = fileSize - dataStart;
      const entries = new Map<string, TensorInfo>();
      let metadata: Record<string, string> = {};
      const ranges: [number, number, string][] = [];
      for (const [name, entry] of Object.entries(header)) {
        if (name === "__metadata__") {
          metadata = entry ?? {};
          continue;
        }
        const where = `safetensors: ${filePath}, tensor "${name}"`;
        if (!entry || typeof entry !== "object") throw new Error(`${where}: header entry is not an object`);
        const { dtype, shape, data_offsets: offsets } = entry;
        // Own keys only: a dtype like "toString" or "constructor" is not a dtype.
        if (typeof dtype !== "string" || !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype))
          throw new Error(
            `${where}: unsupported dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(", ")})`,
          );
        if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0))
          throw new Error(`${where}: bad shape ${JSON.stringify(shape)}`);
        if (
          !Array.isArray(offsets) ||
          offsets.length !== 2 ||
          !offsets.every((o: unknown) => Number.isInteger(o) && (o as number) >= 0) ||
          offsets[0] > offsets[1]
        ) {
          throw new Error(`${where}: bad data_offsets ${JSON.stringify(offsets)}`);
        }
        const expected = elementCount(shape) * DTYPE_BYTES[dtype as SafetensorsDtype];
        if (offsets[1] - offsets[0] !== expected) {
          throw new Error(
            `${where}: data_offsets ${JSON.stringify(offsets)} span ${offsets[1] - offsets[0]} bytes but ${dtype} [${shape}] needs ${expected}`,
          );
        }
        if (offsets[1] > dataSize)
          throw new Error(`${where}: data ends at byte ${offsets[1]} but the file has ${dataSize} bytes of data (truncated)`);
        entries.set(name, { dtype: dtype as SafetensorsDtype, shape: shape.slice(), dataOffsets: [offsets[0], offsets[1]] });
        if (expected > 0) ranges.push([offsets[0], offsets[1], name]);
      }
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) {
        if (ranges[i][0] < ranges[i - 1][1])
          throw new Error(`safetensors: ${filePath}: tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`);
      }
      return new SafetensorsFile(filePath, fd, entries, metadata, dataStart);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /** Tensor names in header order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The header entry of a tensor. */
  info(name: string): TensorInfo {
    const info = this.entries.get(name);
    if (!info) throw new Error(`safetensors: ${this.path} has no tensor "${name}"`);
    return info;
  }

  /** Reads one tensor's values as stored (floats converted to Float32Array). */
  raw(name: string): RawTensor {
    if (this.fd === undefined) throw new Error(`safetensors: ${this.path} is closed`);
    const info = this.info(name);
    const [begin, end] = info.dataOffsets;
    // A fresh ArrayBuffer per tensor: aligned for the typed views, read once, not copied again.
    const bytes = new Uint8Array(end - begin);
    const read = fs.readSync(this.fd, bytes, 0, bytes.length, this.dataStart + begin);
    if (read !== bytes.length)
      throw new Error(
        `safetensors: ${this.path}, tensor "${name}": read ${read} of ${bytes.length} bytes (file changed or truncated)`,
      );
    return { dtype: info.dtype, shape: info.shape, data: decode(info, bytes, `safetensors: ${this.path}, tensor "${name}"`) };
  }

  /** Reads one tensor into tfjs: floats as float32, integers as int32, BOOL as bool. */
  tensor(name: string): tf.Tensor {
    return rawToTensor(this.raw(name));
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A stored tensor as a tfjs tensor (floats → float32, integers → int32, BOOL → bool). */
export function rawToTensor(raw: RawTensor): tf.Tensor {
  const shape = raw.shape.slice();
  if (raw.data instanceof Float32Array) return tf.tensor(raw.data, shape, "float32");
  if (raw.dtype === "BOOL") return tf.tensor(raw.data, shape, "bool");
  return tf.tensor(Int32Array.from(raw.data), shape, "int32");
}

/** What {@link saveSafetensors} writes: a tfjs tensor (stored as F32/I32/BOOL unless `dtype` says otherwise) or raw values. */
export type TensorToSave =
  tf.Tensor | { dtype: SafetensorsDtype; shape: readonly number[]; data: ArrayLike<number> | BigInt64Array };

function encode(
  name: string,
  dtype: SafetensorsDtype,
  shape: readonly number[],
  values: ArrayLike<number> | BigInt64Array,
): Uint8Array {
  const n = elementCount(shape);
  if (values.length !== n)
    throw new Error(`saveSafetensors: tensor "${name}" has ${values.length} values but shape [${shape}] needs ${n}`);
  const num = (i: number) => Number(values[i] as number | bigint);
  switch (dtype) {
    case "F32":
      if (values instanceof Float32Array) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength); // tfjs data: written as it is
      return new Uint8Array(Float32Array.from({ length: n }, (_, i) => num(i)).buffer);
    case "F64":
      return new Uint8Array(Float64Array.from({ length: n }, (_, i) => num(i)).buffer);
    case "F16":
      return new Uint8Array(Uint16Array.from({ length: n }, (_, i) => floatToHalf(num(i))).buffer);
    case "BF16":
      return new Uint8Array(Uint16Array.from({ length: n }, (_, i) => floatToBfloat16(num(i))).buffer);
    case "I32":
      if (values instanceof Int32Array) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      return new Uint8Array(Int32Array.from({ length: n }, (_, i) => num(i)).buffer);
    case "I64":
      return new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(num(i)))).buffer);
    case "U8":
    case "BOOL":
      return Uint8Array.from({ length: n }, (_, i) => num(i));
    case "I8":
      return new Uint8Array(Int8Array.from({ length: n }, (_, i) => num(i)).buffer);
  }
}

/**
 * Writes tensors to a `.safetensors` file, atomically (a temporary file renamed
 * into place), in sorted key order as the Python library does. tfjs tensors are
 * read with `await data()`, so this works on every backend.
 * @param dtypes stored dtype per tfjs tensor name (default F32 for floats, I32 for ints, BOOL for bools)
 */
export async function saveSafetensors(
  filePath: string,
  tensors: Record<string, TensorToSave>,
  options: { metadata?: Record<string, string>; dtypes?: Record<string, SafetensorsDtype> } = {},
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const value = tensors[name];
    let dtype: SafetensorsDtype;
    let shape: readonly number[];
    let bytes: Uint8Array;
    if (value instanceof tf.Tensor) {
      const requested =
        options.dtypes && Object.prototype.hasOwnProperty.call(options.dtypes, name) ? options.dtypes[name] : undefined;
      if (requested !== undefined && !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, requested)) {
        throw new Error(
          `saveSafetensors: tensor "${name}": unsupported dtype ${JSON.stringify(requested)} (expected one of ${Object.keys(DTYPE_BYTES).join(", ")})`,
        );
      }
      dtype =
        requested ??
        (value.dtype === "float32"
          ? "F32"
          : value.dtype === "bool"
            ? "BOOL"
            : value.dtype === "int32"
              ? "I32"
              : (() => {
                  throw new Error(`saveSafetensors: tensor "${name}" has dtype ${value.dtype}, which safetensors cannot store`);
                })());
      shape = value.shape;
      bytes = encode(name, dtype, shape, (await value.data()) as ArrayLike<number>);
    } else {
      if (!Object.prototype.hasOwnProperty.call(DTYPE_BYTES, value.dtype))
        throw new Error(`saveSafetensors: tensor "${name}" has unsupported dtype ${JSON.stringify(value.dtype)}`);
      dtype = value.dtype;
      shape = value.shape;
      bytes = encode(name, dtype, shape, value.data);
    }
    header[name] = { dtype, shape: shape.slice(), data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (Buffer.byteLength(headerText) % 8)) % 8); // pad so the data section is 8-byte aligned
  const headerBytes = Buffer.from(headerText, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  fs.mkdirSync(path.dirname(path.resolve(filePath)), { recursive: true });
  const temporary = `${filePath}.tmp-${process.pid}`;
  const fd = fs.openSync(temporary, "w");
  try {
    fs.writeSync(fd, length);
    fs.writeSync(fd, headerBytes);
    for (const chunk of chunks) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, filePath);
}

/**
 * A checkpoint: one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (`{"weight_map": {name: shard file}}`).
 * Shards open lazily.
 */
export class Checkpoint {
  readonly directory: string;
  private readonly weightMap: Map<string, string>;
  private readonly open = new Map<string, SafetensorsFile>();

  private constructor(directory: string, weightMap: Map<string, string>) {
    this.directory = directory;
    this.weightMap = weightMap;
  }

  /**
   * Opens `<dir>/<base>.safetensors` or `<dir>/<base>.safetensors.index.json`;
   * `location` may also be a `.safetensors` file.
   */
  static open(location: string, base = "model"): Checkpoint {
    if (location.endsWith(".safetensors")) {
      const file = SafetensorsFile.open(location);
      const checkpoint = new Checkpoint(
        path.dirname(location),
        new Map(file.keys().map((key) => [key, path.basename(location)])),
      );
      checkpoint.open.set(path.basename(location), file);
      return checkpoint;
    }
    const single = path.join(location, `${base}.safetensors`);
    const index = path.join(location, `${base}.safetensors.index.json`);
    if (fs.existsSync(single)) return Checkpoint.open(single);
    if (fs.existsSync(index)) {
      let parsed: any;
      try {
        parsed = JSON.parse(fs.readFileSync(index, "utf8"));
      } catch (error) {
        throw new Error(`checkpoint: ${index} is not valid JSON (${(error as Error).message})`);
      }
      if (!parsed || typeof parsed.weight_map !== "object" || parsed.weight_map === null || Array.isArray(parsed.weight_map)) {
        throw new Error(
          `checkpoint: ${index} has no "weight_map" object (got ${JSON.stringify(parsed?.weight_map)?.slice(0, 60)})`,
        );
      }
      const weightMap = new Map<string, string>();
      for (const [name, shard] of Object.entries(parsed.weight_map)) {
        // A shard is a plain file name in the checkpoint folder: no folders, not "." or "..".
        if (
          typeof shard !== "string" ||
          shard === "" ||
          shard === "." ||
          shard === ".." ||
          shard.includes("/") ||
          shard.includes("\\") ||
          shard.includes("\0")
        ) {
          throw new Error(
            `checkpoint: ${index} maps "${name}" to a bad shard ${JSON.stringify(shard)} (expected a file name in ${location}, like "model-00001-of-00002.safetensors")`,
          );
        }
        const shardPath = path.join(location, shard);
        if (!fs.existsSync(shardPath))
          throw new Error(`checkpoint: ${index} lists shard ${shard} for "${name}", but ${shardPath} is missing`);
        if (!fs.statSync(shardPath).isFile())
          throw new Error(`checkpoint: ${index} lists shard ${shard} for "${name}", but ${shardPath} is not a file`);
        weightMap.set(name, shard);
      }
      return new Checkpoint(location, weightMap);
    }
    throw new Error(`checkpoint: neither ${single} nor ${index} exists`);
  }

  keys(): string[] {
    return [...this.weightMap.keys()];
  }

  has(name: string): boolean {
    return this.weightMap.has(name);
  }

  private file(name: string): SafetensorsFile {
    const shard = this.weightMap.get(name);
    if (!shard) throw new Error(`checkpoint: ${this.directory} has no tensor "${name}"`);
    let file = this.open.get(shard);
    if (!file) {
      file = SafetensorsFile.open(path.join(this.directory, shard));
      this.open.set(shard, file);
    }
    if (!file.has(name))
      throw new Error(`checkpoint: the index of ${this.directory} puts "${name}" in ${shard}, which does not hold it`);
    return file;
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  raw(name: string): RawTensor {
    return this.file(name).raw(name);
  }

  tensor(name: string): tf.Tensor {
    return this.file(name).tensor(name);
  }

  close(): void {
    for (const file of this.open.values()) file.close();
    this.open.clear();
  }
}

/**
 * Writes a sharded checkpoint: shards of at most `maxShardBytes` named
 * `model-0000k-of-0000n.safetensors` and `model.safetensors.index.json`, as
 * `save_pretrained(max_shard_size=...)` does. One shard → `model.safetensors`.
 */
export async function saveCheckpoint(
  directory: string,
  tensors: Record<string, tf.Tensor>,
  options: { maxShardBytes?: number; base?: string } = {},
): Promise<string[]> {
  const base = options.base ?? "model";
  const limit = options.maxShardBytes ?? 5 * 1024 ** 3;
  const shards: string[][] = [[]];
  let size = 0;
  for (const name of Object.keys(tensors).sort()) {
    const bytes = tensors[name].size * 4;
    if (size > 0 && size + bytes > limit) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(name);
    size += bytes;
  }
  fs.mkdirSync(directory, { recursive: true });
  if (shards.length === 1) {
    await saveSafetensors(path.join(directory, `${base}.safetensors`), tensors, { metadata: { format: "pt" } });
    return [`${base}.safetensors`];
  }
  const pad = (k: number) => String(k).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  let totalSize = 0;
  for (let k = 0; k < shards.length; k++) {
    const file = `${base}-${pad(k + 1)}-of-${pad(shards.length)}.safetensors`;
    const part: Record<string, tf.Tensor> = {};
    for (const name of shards[k]) {
      part[name] = tensors[name];
      weightMap[name] = file;
      totalSize += tensors[name].size * 4;
    }
    await saveSafetensors(path.join(directory, file), part, { metadata: { format: "pt" } });
    files.push(file);
  }
  const index = path.join(directory, `${base}.safetensors.index.json`);
  fs.writeFileSync(
    `${index}.tmp`,
    JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + "\n",
  );
  fs.renameSync(`${index}.tmp`, index);
  return files;
}
