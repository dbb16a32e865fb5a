/**
 * Parity of LoRA with peft: a fixture folder with `base/` (a Llama
 * checkpoint), `adapter/` (a peft adapter) and `io.safetensors` (`input_ids`,
 * `logits` with the adapter, `merged_logits` after `merge_and_unload`, and
 * optionally merged weights `merged.<name>.<layer>`).
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SafetensorsFile } from "../io/safetensors";
import { loadLlama } from "../io/pretrained";
import { LoraModel } from "../peft/lora";
import { Linear } from "../nn/linear";
import { compareTensors, type ParityResult } from "./compare";

export async function runLoraParity(directory: string, tolerance: number): Promise<ParityResult[]> {
  const io = SafetensorsFile.open(path.join(directory, "io.safetensors"));
  const model = loadLlama(path.join(directory, "base"));
  const live: tf.Tensor[] = [];
  const stored = (name: string) => {
    const tensor = io.tensor(name);
    live.push(tensor);
    return tensor;
  };
  try {
    const results: ParityResult[] = [];
    const lora = new LoraModel(model).loadAdapter(path.join(directory, "adapter"));
    const inputIds = stored("input_ids");
    const logits = model.apply(inputIds);
    live.push(logits);
    results.push(await compareTensors("logits", logits, stored("logits"), tolerance));
    await lora.mergeAndUnload();
    const merged = model.apply(inputIds);
    live.push(merged);
    if (io.has("merged_logits")) results.push(await compareTensors("merged_logits", merged, stored("merged_logits"), tolerance));
    for (const key of io.keys()) {
      // merged.<projection>.<layer>: that layer's merged weight, found by its last name in the attention or MLP block.
      const match = /^merged\.(\w+)\.(\d+)$/.exec(key);
      if (!match) continue;
      const [, projection, layer] = match;
      const found = model
        .namedModules()
        .find(
          ([name, module]) =>
            module instanceof Linear && name.startsWith(`model.layers.${layer}.`) && name.endsWith(`.${projection}`),
        );
      if (!found) throw new Error(`parity: ${key} names no linear layer of the model`);
      results.push(await compareTensors(key, (found[1] as Linear).weight, stored(key), tolerance));
    }
    return results;
  } finally {
    tf.dispose(live);
    model.dispose();
    io.close();
  }
}
