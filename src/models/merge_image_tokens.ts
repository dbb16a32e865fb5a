/**
 * Putting image features into a language model's input: every image
 * placeholder token (`<image>`) in the text is replaced, in reading order, by
 * the next image feature vector — how LLaVA and BLIP-2 in transformers feed
 * vision into the LLM (`inputs_embeds.masked_scatter(special_image_mask, image_features)`).
 *
 * Reference: transformers `models/llava/modeling_llava.py` (`get_placeholder_mask`,
 * `masked_scatter`); `models/blip_2/modeling_blip_2.py`.
 */
import * as tf from "@tensorflow/tfjs";
import type { Embedding } from "../nn/embedding";

/**
 * textEmbeds: [B, T, D]; inputIds: [B, T] int32; imageFeatures: [Nimg_total, D] or [B, Nimg, D]
 * (flattened in order: row 0's images first).
 * @returns [B, T, D]: text embeddings with the placeholder positions filled
 *
 * Differentiable in the features (a gather), so a projector trains through it.
 * The count of placeholders must equal the count of feature vectors: check it
 * with {@link countImageTokens} (an async read) where inputs come from users.
 */
export function mergeImageTokens(
  textEmbeds: tf.Tensor,
  inputIds: tf.Tensor,
  imageFeatures: tf.Tensor,
  imageTokenId: number,
): tf.Tensor {
  const [B, T, D] = textEmbeds.shape;
  if (imageFeatures.shape[imageFeatures.rank - 1] !== D) {
    throw new Error(
      `mergeImageTokens: image features have width ${imageFeatures.shape[imageFeatures.rank - 1]} but the text embeddings ${D}`,
    );
  }
  return tf.tidy(() => {
    const features = imageFeatures.reshape([-1, D]); // [N, D]
    const isImage = inputIds.reshape([B * T]).equal(imageTokenId); // [B·T]
    // The k-th placeholder (in reading order) takes feature k: index = (number of placeholders so far) − 1.
    const order = tf
      .cumsum(isImage.toInt(), 0)
      .sub(tf.scalar(1, "int32"))
      .clipByValue(0, Math.max(0, features.shape[0] - 1)); // [B·T] int32
    const gathered = tf.gather(features, order); // [B·T, D]
    const merged = tf.where(isImage.reshape([B * T, 1]).tile([1, D]), gathered, textEmbeds.reshape([B * T, D]));
    return merged.reshape([B, T, D]);
  });
}

/**
 * A prompt's input embeddings: its tokens through `embedTokens`, then the
 * image features in the placeholders. The placeholder id may lie outside the
 * vocabulary, so it is embedded as id 0 (and replaced).
 * inputIds: [B, T] int32; imageFeatures: see {@link mergeImageTokens}, or none for text only → [B, T, D]
 */
export function embedWithImageFeatures(
  embedTokens: Embedding,
  inputIds: tf.Tensor,
  imageFeatures: tf.Tensor | undefined,
  imageTokenId: number,
): tf.Tensor {
  return tf.tidy(() => {
    const isImage = inputIds.equal(imageTokenId);
    const textEmbeds = embedTokens.apply(tf.where(isImage, tf.zerosLike(inputIds), inputIds)); // [B, T, D]
    return imageFeatures ? mergeImageTokens(textEmbeds, inputIds, imageFeatures, imageTokenId) : textEmbeds;
  });
}

/** Number of placeholder tokens per row (an async read; works on every backend). */
export async function countImageTokens(inputIds: tf.Tensor, imageTokenId: number): Promise<number[]> {
  const counts = tf.tidy(() => inputIds.equal(imageTokenId).toInt().sum(-1));
  const values = Array.from(await counts.data());
  counts.dispose();
  return values;
}

/**
 * Rejects a batch whose placeholders do not match the image features, with
 * the counts in the message (transformers: "Image features and image tokens do not match").
 */
export async function checkImageTokens(
  inputIds: tf.Tensor,
  imageTokenId: number,
  featuresPerImage: number,
  images: number,
): Promise<void> {
  const counts = await countImageTokens(inputIds, imageTokenId);
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total !== featuresPerImage * images) {
    throw new Error(
      `image tokens: the text holds ${total} image token(s) (id ${imageTokenId}; per row ${counts.join(", ")}) but ${images} image(s) give ${featuresPerImage} feature vectors each (${featuresPerImage * images})`,
    );
  }
}
