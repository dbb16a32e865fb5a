/**
 * Retrieval and matching metrics of image–text models: Recall@K in both
 * directions (image→text, text→image) and image–text matching accuracy.
 *
 * Papers: Radford et al., "Learning Transferable Visual Models From Natural
 * Language Supervision" (CLIP, 2021) and Li et al., "BLIP-2" (2023), which
 * report R@1/R@5/R@10 on COCO and Flickr30K with five captions per image.
 * Reference: LAVIS `lavis/tasks/retrieval.py` (`_report_metrics`: an image
 * counts when any of its captions ranks in the top K; a caption when its
 * image does) and `lavis/models/blip2_models/blip2_qformer.py` (ITM head:
 * two logits, class 1 = match).
 *
 * Ranking rule here: candidates sort by similarity, highest first; on equal
 * similarity the lower index ranks first (a stable sort), so results do not
 * depend on the sort implementation.
 */
import { argmax } from "../models/sampling";

/** Rows of a similarity matrix, checked: rectangular, non-empty, finite. Returns the number of columns. */
function checkSimilarity(where: string, similarity: readonly (readonly number[])[]): number {
  if (!Array.isArray(similarity) || similarity.length === 0) {
    throw new Error(
      `${where}: similarity must be a non-empty array of rows (queries × candidates), got ${JSON.stringify(similarity)}`,
    );
  }
  const columns = similarity[0]?.length;
  if (!columns)
    throw new Error(`${where}: similarity rows must be non-empty arrays of numbers, row 0 is ${JSON.stringify(similarity[0])}`);
  similarity.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== columns) {
      throw new Error(
        `${where}: every similarity row must have ${columns} entries (as row 0), row ${r} has ${Array.isArray(row) ? row.length : JSON.stringify(row)}`,
      );
    }
    row.forEach((value, c) => {
      if (typeof value !== "number" || !Number.isFinite(value))
        throw new Error(`${where}: similarity[${r}][${c}] must be a finite number, got ${value}`);
    });
  });
  return columns;
}

function checkK(where: string, k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${where}: k must be an integer ≥ 1, got ${k}`);
}

/** The rank (0 = first) of the best-placed positive in one row. */
function bestPositiveRank(row: readonly number[], positives: readonly number[]): number {
  // The best positive has the highest score, the lowest index on a tie; its rank is the smallest.
  let best = positives[0];
  for (const p of positives) if (row[p] > row[best] || (row[p] === row[best] && p < best)) best = p;
  let rank = 0;
  for (let c = 0; c < row.length; c++) if (row[c] > row[best] || (row[c] === row[best] && c < best)) rank++;
  return rank;
}

function positivesOf(
  where: string,
  positives: (row: number) => readonly number[] | number,
  row: number,
  columns: number,
): readonly number[] {
  const given = positives(row);
  const list = typeof given === "number" ? [given] : given;
  if (!Array.isArray(list) || list.length === 0)
    throw new Error(`${where}: row ${row} has no positive candidates, got ${JSON.stringify(given)}`);
  for (const p of list) {
    if (!Number.isInteger(p) || p < 0 || p >= columns) {
      throw new Error(`${where}: positive ${JSON.stringify(p)} of row ${row} is not a column index in [0, ${columns})`);
    }
  }
  return list;
}

/**
 * Recall@K: the fraction of rows (queries) for which at least one positive
 * column (candidate) ranks among the k most similar.
 *
 * @param similarity [Q][C]: similarity of query q to candidate c (higher = more similar).
 * @param k how many top-ranked candidates count, an integer ≥ 1.
 * @param positives the positive column index or indices of a row.
 */
export function recallAtK(
  similarity: readonly (readonly number[])[],
  k: number,
  positives: (row: number) => readonly number[] | number,
): number {
  checkK("recallAtK", k);
  const columns = checkSimilarity("recallAtK", similarity);
  let hits = 0;
  similarity.forEach((row, r) => {
    if (bestPositiveRank(row, positivesOf("recallAtK", positives, r, columns)) < k) hits++;
  });
  return hits / similarity.length;
}

/**
 * Chance level of Recall@K: the probability that at least one of `positives`
 * candidates lands in the top k of a uniformly random ranking of `candidates`,
 * 1 − C(candidates − positives, k) / C(candidates, k). The baseline beside a
 * retrieval score (text→image: positives = 1; image→text: captions per image).
 */
export function chanceRecallAtK(candidates: number, positives: number, k: number): number {
  checkK("chanceRecallAtK", k);
  if (!Number.isInteger(candidates) || candidates < 1)
    throw new Error(`chanceRecallAtK: candidates must be an integer ≥ 1, got ${candidates}`);
  if (!Number.isInteger(positives) || positives < 1 || positives > candidates) {
    throw new Error(`chanceRecallAtK: positives must be an integer in [1, ${candidates}], got ${positives}`);
  }
  // C(n − p, k) / C(n, k) = Π_{i<k} (n − p − i) / (n − i): the chance that all k top places go to negatives.
  let allNegative = 1;
  for (let i = 0; i < Math.min(k, candidates); i++) allNegative *= Math.max(0, candidates - positives - i) / (candidates - i);
  return 1 - allNegative;
}

/** Recall@K of both directions, keyed by K. */
export interface ImageTextRecall {
  /** K → fraction of images with at least one of their captions in the top K captions. */
  readonly imageToText: Record<number, number>;
  /** K → fraction of captions whose image is in the top K images. */
  readonly textToImage: Record<number, number>;
}

/**
 * Recall@K image→text and text→image when each image has one or more
 * captions, as LAVIS reports retrieval (`txt_r1`, `img_r1`, …).
 *
 * @param similarity [Nimg][Ntxt]: similarity of image i to caption t.
 * @param imageOfText [Ntxt]: the index of the image each caption describes.
 * @param ks the K values. Default [1, 5, 10].
 */
export function imageTextRecall(
  similarity: readonly (readonly number[])[],
  imageOfText: readonly number[],
  ks: readonly number[] = [1, 5, 10],
): ImageTextRecall {
  const texts = checkSimilarity("imageTextRecall", similarity);
  const images = similarity.length;
  if (!Array.isArray(imageOfText) || imageOfText.length !== texts) {
    throw new Error(
      `imageTextRecall: imageOfText must give one image index per caption (${texts} columns), got ${Array.isArray(imageOfText) ? `${imageOfText.length} entries` : JSON.stringify(imageOfText)}`,
    );
  }
  const textsOfImage: number[][] = Array.from({ length: images }, () => []);
  imageOfText.forEach((image, t) => {
    if (!Number.isInteger(image) || image < 0 || image >= images) {
      throw new Error(`imageTextRecall: imageOfText[${t}] = ${JSON.stringify(image)} is not an image index in [0, ${images})`);
    }
    textsOfImage[image].push(t);
  });
  const captionless = textsOfImage.findIndex((list) => list.length === 0);
  if (captionless >= 0) throw new Error(`imageTextRecall: image ${captionless} has no caption in imageOfText`);
  ks.forEach((k) => checkK("imageTextRecall", k));
  // [Ntxt][Nimg]: the same scores with captions as queries.
  const transposed = Array.from({ length: texts }, (_, t) => similarity.map((row) => row[t]));
  const imageToText: Record<number, number> = {};
  const textToImage: Record<number, number> = {};
  for (const k of ks) {
    imageToText[k] = recallAtK(similarity, k, (image) => textsOfImage[image]);
    textToImage[k] = recallAtK(transposed, k, (text) => imageOfText[text]);
  }
  return { imageToText, textToImage };
}

/**
 * Image–text matching accuracy: the fraction of pairs whose predicted class
 * equals the label (1 = the caption matches the image, 0 = it does not).
 *
 * @param predicted [B] predicted classes, or [B][classes] logits (the class is
 *   the first index of the largest logit, torch's argmax).
 * @param labels [B] true classes, integers ≥ 0.
 */
export function itmAccuracy(predicted: readonly number[] | readonly (readonly number[])[], labels: readonly number[]): number {
  if (!Array.isArray(predicted) || !Array.isArray(labels) || predicted.length !== labels.length) {
    throw new Error(
      `itmAccuracy: expected one prediction per label, got ${Array.isArray(predicted) ? predicted.length : JSON.stringify(predicted)} predictions and ${Array.isArray(labels) ? labels.length : JSON.stringify(labels)} labels`,
    );
  }
  if (labels.length === 0) throw new Error("itmAccuracy: no pairs to score (empty labels)");
  let correct = 0;
  labels.forEach((label, i) => {
    const prediction = predicted[i];
    let predictedClass: number;
    if (Array.isArray(prediction)) {
      if (prediction.length === 0 || prediction.some((v) => typeof v !== "number" || Number.isNaN(v))) {
        throw new Error(
          `itmAccuracy: logits of pair ${i} must be a non-empty array of numbers, got ${JSON.stringify(prediction)}`,
        );
      }
      if (!Number.isInteger(label) || label < 0 || label >= prediction.length) {
        throw new Error(
          `itmAccuracy: label ${i} must be a class index in [0, ${prediction.length}), got ${JSON.stringify(label)}`,
        );
      }
      predictedClass = argmax(prediction);
    } else {
      if (!Number.isInteger(prediction) || (prediction as number) < 0) {
        throw new Error(
          `itmAccuracy: prediction ${i} must be a class index (integer ≥ 0) or an array of logits, got ${JSON.stringify(prediction)}`,
        );
      }
      if (!Number.isInteger(label) || label < 0)
        throw new Error(`itmAccuracy: label ${i} must be a class index (integer ≥ 0), got ${JSON.stringify(label)}`);
      predictedClass = prediction as number;
    }
    if (predictedClass === label) correct++;
  });
  return correct / labels.length;
}
