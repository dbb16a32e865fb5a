/**
 * Shared-prefix packing: several one-question conversations about the same image, which begin with the same tokens
 * (the system prompt, the image's tokens, the words every question opens with), packed into one row as the shared
 * prefix followed by each conversation's remainder, a branch. With the branch mask (`branchMask` in nn/masks.ts) each
 * branch attends to the prefix and to itself only, and with the positions given here it continues the prefix's
 * positions as if it were alone: every branch computes exactly what its conversation computes on its own, while the
 * image's tokens go through the LLM once per row instead of once per question. Training on a scene's questions this
 * way is training on POPE's format (one question, no earlier answers to lean on) at the cost of one multi-round
 * conversation.
 *
 * The prefix stops before the first token that any branch supervises, less one: the token before a supervised one is
 * then always in that token's own branch, so the loss's shift (logits at t predict the label at t + 1) stays right
 * across branch boundaries (the first token of every branch is unsupervised).
 *
 * Reference: tree attention over a shared prefix as in prefix-sharing trainers (e.g. the "shared prefix" packing of
 * RLHF and reranking trainers) and SpecInfer's token-tree verification (Miao et al., ASPLOS 2024).
 */
import { IGNORE_INDEX, type TokenizedConversation } from "./conversation";

/** Conversations packed after their shared prefix: one row of ids, labels, positions and branches. */
export interface PackedBranches extends TokenizedConversation {
  /** [T] the rotary position of each token: the prefix 0 … P − 1, each branch P … P + its length − 1. */
  readonly positionIds: number[];
  /** [T] 0 for the shared prefix, k for the tokens of the k-th conversation (1-based). */
  readonly branchIds: number[];
}

/**
 * Packs tokenized conversations that share their beginning (the same image first) into one row.
 * @param conversations at least one, each holding the same images in its shared prefix and none after it
 * @param imageTokenId the image placeholder's id (its expanded positions must all fall in the prefix)
 */
export function packBranches(conversations: readonly TokenizedConversation[], imageTokenId: number): PackedBranches {
  if (!Array.isArray(conversations) || conversations.length === 0) throw new Error("packBranches: no conversations");
  conversations.forEach((c, k) => {
    if (c.labels.length !== c.inputIds.length)
      throw new Error(`packBranches: conversation ${k} has ${c.inputIds.length} ids but ${c.labels.length} labels`);
  });
  // The longest common prefix of the ids, cut before the first supervised position of any conversation less one.
  const first = conversations[0];
  let prefix = Math.min(...conversations.map((c) => c.inputIds.length));
  for (const c of conversations) {
    let same = 0;
    while (same < prefix && c.inputIds[same] === first.inputIds[same]) same++;
    prefix = same;
    const supervised = c.labels.findIndex((label: number) => label !== IGNORE_INDEX);
    if (supervised >= 0) prefix = Math.min(prefix, supervised - 1);
  }
  if (prefix < 1)
    throw new Error(
      "packBranches: the conversations share no prefix before their first answer; pack conversations that begin alike (the same system prompt and image)",
    );
  const images = first.images;
  conversations.forEach((c, k) => {
    if (c.images !== images)
      throw new Error(`packBranches: conversation ${k} holds ${c.images} image(s) but conversation 0 holds ${images}`);
  });
  conversations.forEach((c, k) => {
    const late = c.inputIds.indexOf(imageTokenId, prefix);
    if (late >= 0)
      throw new Error(
        `packBranches: conversation ${k} has an image token at ${late}, after the shared prefix (${prefix} tokens); its images must come before the conversations differ`,
      );
  });
  const inputIds = first.inputIds.slice(0, prefix);
  const labels = first.labels.slice(0, prefix);
  const positionIds = Array.from({ length: prefix }, (_, t) => t);
  const branchIds = new Array<number>(prefix).fill(0);
  conversations.forEach((c, k) => {
    const rest = c.inputIds.length - prefix;
    inputIds.push(...c.inputIds.slice(prefix));
    labels.push(...c.labels.slice(prefix));
    positionIds.push(...Array.from({ length: rest }, (_, t) => prefix + t));
    branchIds.push(...new Array<number>(rest).fill(k + 1));
  });
  return {
    inputIds,
    labels,
    images,
    droppedRounds: conversations.reduce((sum, c) => sum + c.droppedRounds, 0),
    positionIds,
    branchIds,
  };
}
