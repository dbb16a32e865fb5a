/**
 * mllm-labs: the shared library of the multimodal LLM labs.
 *
 * The notebooks import it by package name:
 *   import { initEngine, nn, GPT } from "mllm-labs";
 */
export { initEngine, engineInfo, closeEngine, type BackendName, type EngineArgs, type EngineInfo } from "./engine/init";
export { Random } from "./util/random";

import { Module } from "./nn/module";
import { Linear } from "./nn/linear";
import { Embedding } from "./nn/embedding";
import { LayerNorm } from "./nn/layer_norm";
import { scaledDotProductAttention, causalMask } from "./nn/attention";
import { MultiHeadAttention } from "./nn/multi_head_attention";
import { MLP, gelu } from "./nn/mlp";
import { TransformerBlock } from "./nn/transformer_block";

/** Building blocks, smallest first. */
export const nn = { Module, Linear, Embedding, LayerNorm, scaledDotProductAttention, causalMask, MultiHeadAttention, MLP, gelu, TransformerBlock };
export { Module, Linear, Embedding, LayerNorm, scaledDotProductAttention, causalMask, MultiHeadAttention, MLP, gelu, TransformerBlock };
export type { AttentionResult } from "./nn/attention";

export { GPT, GPT_PRESETS, type GPTConfig } from "./models/gpt";
export { crossEntropy } from "./train/loss";
export { readWav, decodeWav, type Waveform } from "./io/wav";
export { AdamW, type AdamWArgs } from "./train/adamw";
export { layerNorm } from "./ops/layer_norm";
export { rmsNorm } from "./ops/rms_norm";
