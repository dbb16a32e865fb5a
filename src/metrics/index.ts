/**
 * Evaluation metrics of the labs: caption metrics as the COCO caption
 * evaluation (pycocoevalcap) computes them, retrieval Recall@K and
 * image–text matching accuracy, ROUGE-L and the story metrics of lab 05. VQA soft accuracy lives with the VQA data
 * (`data/vqa.ts`, `vqaAccuracy`).
 */
export {
  ptbTokenize,
  PTB_PUNCTUATION,
  ngramKey,
  ngrams,
  countNgrams,
  countNgramsUpTo,
  maxCounts,
  clippedMatches,
  tokenizeCorpus,
  type NgramCounts,
} from "./ngrams";
export { bleu, bleu4, bleuScores, type BleuResult } from "./bleu";
export { ciderD, ciderDPerImage, type CiderDArgs } from "./cider";
export { recallAtK, chanceRecallAtK, imageTextRecall, itmAccuracy, type ImageTextRecall } from "./retrieval";
export { rougeL, rougeLPerItem, longestCommonSubsequence } from "./rouge";
export { storyMetrics, storyGrounding, storyRepetition, storyOrder, type StoryMetrics, type FrameAnnotation } from "./story";
