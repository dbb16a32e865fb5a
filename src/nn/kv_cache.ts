/**
 * A key/value cache for incremental decoding: each layer's keys and values of
 * the positions seen so far, so a new token attends to them without
 * recomputing them.
 *
 * Reference: transformers `cache_utils.py` (`DynamicCache`); nanoVLM's `kv_cache`.
 * The cache owns its tensors (kept out of `tf.tidy`); call {@link KVCache.dispose}.
 */
import * as tf from "@tensorflow/tfjs";

export class KVCache {
  private readonly keys: (tf.Tensor | undefined)[];
  private readonly values: (tf.Tensor | undefined)[];

  /** @param layers number of attention layers that will write to the cache */
  constructor(readonly layers: number) {
    this.keys = new Array(layers).fill(undefined);
    this.values = new Array(layers).fill(undefined);
  }

  /** Positions cached so far (Tpast). */
  get length(): number {
    return (this.keys[0]?.shape[2] as number | undefined) ?? 0;
  }

  /**
   * Appends this step's keys and values of one layer and returns all of them.
   * key, value: [B, Hkv, Tnew, Dh] → [B, Hkv, Tpast + Tnew, Dh] each.
   * The returned tensors belong to the cache (do not dispose them).
   */
  update(layer: number, key: tf.Tensor, value: tf.Tensor): { key: tf.Tensor; value: tf.Tensor } {
    if (layer < 0 || layer >= this.layers) throw new Error(`KVCache: layer ${layer} out of range [0, ${this.layers})`);
    const previousKey = this.keys[layer];
    const previousValue = this.values[layer];
    const allKeys = tf.keep(previousKey ? tf.concat([previousKey, key], 2) : key.clone()); // [B, Hkv, Tpast + Tnew, Dh]
    const allValues = tf.keep(previousValue ? tf.concat([previousValue, value], 2) : value.clone());
    previousKey?.dispose();
    previousValue?.dispose();
    this.keys[layer] = allKeys;
    this.values[layer] = allValues;
    return { key: allKeys, value: allValues };
  }

  /**
   * Keeps, for each new row i, the cached keys and values of row `rows[i]`
   * (beam search: beams follow their parents; HF: `DynamicCache.reorder_cache`).
   * [B, Hkv, Tpast, Dh] → [rows.length, Hkv, Tpast, Dh] per layer.
   */
  reorder(rows: readonly number[]): void {
    const batch = this.keys[0]?.shape[0] ?? 0;
    const bad = rows.find((row) => !Number.isInteger(row) || row < 0 || row >= batch);
    if (bad !== undefined) throw new Error(`KVCache.reorder: row ${bad} is outside the cached batch of ${batch} rows`);
    for (let i = 0; i < this.layers; i++) {
      const [key, value] = [this.keys[i], this.values[i]];
      if (!key || !value) continue;
      this.keys[i] = tf.keep(tf.tidy(() => tf.gather(key, tf.tensor1d(rows as number[], "int32"), 0)));
      this.values[i] = tf.keep(tf.tidy(() => tf.gather(value, tf.tensor1d(rows as number[], "int32"), 0)));
      key.dispose();
      value.dispose();
    }
  }

  /** Frees every cached tensor. */
  dispose(): void {
    for (let i = 0; i < this.layers; i++) {
      this.keys[i]?.dispose();
      this.values[i]?.dispose();
      this.keys[i] = undefined;
      this.values[i] = undefined;
    }
  }
}
