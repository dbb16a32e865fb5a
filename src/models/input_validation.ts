/**
 * Checks of what users hand to the models, called at the top of `generate`
 * (and of `checkInputs`): generation options that would silently do
 * something else (a fractional or negative `maxNewTokens`, `topP` outside
 * (0, 1], a `topK` below 1), an empty prompt, and token ids outside the
 * vocabulary (named with the vocabulary size). transformers raises for the
 * same cases (`GenerationConfig.validate`, the embedding's index error).
 */
import * as tf from "@tensorflow/tfjs";

/** The options {@link validateGenerateOptions} checks (a subset of GenerateOptions). */
export interface GenerationSettings {
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stopTokens?: readonly number[];
}

/** Throws for a generation option no run can honour, quoting the value; `who` names the model. */
export function validateGenerateOptions(options: GenerationSettings, vocabSize: number, who = "generate"): void {
  const { maxNewTokens, temperature, topK, topP, seed, stopTokens } = options;
  if (maxNewTokens !== undefined && !(Number.isInteger(maxNewTokens) && maxNewTokens >= 1)) {
    throw new Error(`${who}: maxNewTokens must be a positive integer, got ${JSON.stringify(maxNewTokens)}`);
  }
  if (temperature !== undefined && !(typeof temperature === "number" && Number.isFinite(temperature) && temperature >= 0)) {
    throw new Error(`${who}: temperature must be a finite number ≥ 0 (0 = greedy), got ${JSON.stringify(temperature)}`);
  }
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1))
    throw new Error(`${who}: topK must be a positive integer, got ${JSON.stringify(topK)}`);
  if (topP !== undefined && !(typeof topP === "number" && topP > 0 && topP <= 1))
    throw new Error(`${who}: topP must be in (0, 1], got ${JSON.stringify(topP)}`);
  if (seed !== undefined && !Number.isInteger(seed))
    throw new Error(`${who}: seed must be an integer, got ${JSON.stringify(seed)}`);
  for (const id of stopTokens ?? []) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize))
      throw new Error(
        `${who}: stop token ${JSON.stringify(id)} is outside the vocabulary of ${vocabSize} tokens (ids 0..${vocabSize - 1})`,
      );
  }
}

/** Throws for a prompt with no tokens: `prompt` is [B, T] ids or [B, T, D] embeddings. */
export function checkPromptNotEmpty(prompt: tf.Tensor, who = "generate"): void {
  if (prompt.rank < 2 || prompt.shape[0] === 0 || prompt.shape[1] === 0) {
    throw new Error(
      `${who}: the prompt is empty (shape [${prompt.shape.join(", ")}]); give at least one token per row (e.g. the BOS token)`,
    );
  }
}

/**
 * Throws when an id in `inputIds` [B, T] lies outside [0, vocabSize), naming
 * the id, its row and position and the vocabulary size. Ids in `allowed`
 * (placeholders such as LLaVA's image token, replaced before the embedding)
 * pass. Reads the ids with an async read (safe on every backend).
 */
export async function checkTokenIds(
  inputIds: tf.Tensor,
  vocabSize: number,
  who = "generate",
  allowed: readonly number[] = [],
): Promise<void> {
  if (inputIds.dtype !== "int32") throw new Error(`${who}: inputIds must be int32, got ${inputIds.dtype}`);
  const values = await inputIds.data();
  const T = inputIds.rank >= 2 ? (inputIds.shape[inputIds.rank - 1] as number) : values.length;
  for (let i = 0; i < values.length; i++) {
    const id = values[i];
    if ((id < 0 || id >= vocabSize) && !allowed.includes(id)) {
      throw new Error(
        `${who}: token id ${id} (row ${Math.floor(i / T)}, position ${i % T}) is outside the vocabulary of ${vocabSize} tokens (ids 0..${vocabSize - 1})`,
      );
    }
  }
}

/**
 * The image-token check of `forward`, which is synchronous and so cannot read
 * the ids: the count difference (placeholders − feature vectors) becomes the
 * index of a gather from a one-element tensor, which the CPU backends (cpu,
 * native, tensorflow) bounds-check; an out-of-range index is turned into the
 * same message as {@link checkImageTokens}'s async check. WebGPU does not
 * bounds-check on the GPU: there, call the model's async `checkInputs` first
 * (`generate` always does).
 * inputIds: [B, T] int32; `expected` = images × feature vectors per image.
 */
export function assertImageTokenCount(
  inputIds: tf.Tensor,
  imageTokenId: number,
  featuresPerImage: number,
  images: number,
  who: string,
): void {
  const expected = featuresPerImage * images;
  try {
    tf.tidy(() => {
      const count = inputIds.equal(imageTokenId).toInt().sum(); // [] placeholders in the batch
      const difference = count.sub(tf.scalar(expected, "int32")).reshape([1]); // [1], 0 when they match
      return tf.gather(tf.zeros([1]), difference);
    }).dispose();
  } catch (error) {
    const match = /index value (-?\d+) is not in \[0, 0\]/.exec((error as Error).message);
    if (!match) throw error;
    const total = expected + Number(match[1]);
    throw new Error(
      `${who}: the text holds ${total} image token(s) (id ${imageTokenId}) but ${images} image(s) give ${featuresPerImage} feature vectors each (${expected})`,
    );
  }
}

/**
 * Multi-image prompts: every row of `inputIds` [B, T] must hold `frames` × `featuresPerImage`
 * placeholders. Synchronous, by the same bounds-checked gather as {@link assertImageTokenCount}
 * (WebGPU: call the model's async `checkInputs`, which names the row).
 */
export function assertImageTokensPerRow(
  inputIds: tf.Tensor,
  imageTokenId: number,
  featuresPerImage: number,
  frames: number,
  who: string,
): void {
  const expected = featuresPerImage * frames;
  try {
    tf.tidy(() => {
      const counts = inputIds.equal(imageTokenId).toInt().sum(-1); // [B] placeholders per row
      const difference = counts.sub(tf.scalar(expected, "int32")); // [B], 0 where a row matches
      return tf.gather(tf.zeros([1]), difference);
    }).dispose();
  } catch (error) {
    const match = /index value (-?\d+) is not in \[0, 0\]/.exec((error as Error).message);
    if (!match) throw error;
    const count = expected + Number(match[1]);
    throw new Error(
      `${who}: a row holds ${count} image token(s) (id ${imageTokenId}) but ${frames} frames per row need ${frames} × ${featuresPerImage} = ${expected}`,
    );
  }
}
