/**
 * A tiny LLaVA over the world tokenizer for the training tests: 16×16 images in 8×8 patches → 4 image tokens, a 2-layer
 * tower and a 2-layer LLM of width 32 (grouped-query, tied embeddings), tower layer −2.
 */
import type { LlavaConfig } from "../../src/models/llava";
import type { TextTokenizer } from "../../src/tokenizer/tokenizer";

export function tinyLlavaConfig(tokenizer: TextTokenizer, overrides: Partial<LlavaConfig> = {}): LlavaConfig {
  return {
    vision: { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 },
    text: {
      vocabSize: tokenizer.vocabSize,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKeyValueHeads: 2,
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 256,
      eosTokenIds: [tokenizer.eosTokenId],
      padTokenId: tokenizer.padTokenId,
    },
    imageTokenId: tokenizer.tokenId("<image>"),
    visionFeatureLayers: [-2],
    visionFeatureSelectStrategy: "default",
    seed: 5,
    ...overrides,
  };
}
