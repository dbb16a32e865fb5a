/**
 * Multi-image prompts for visual storytelling (lab 05): one `<image>`
 * placeholder per frame, in frame order, each optionally preceded by a text
 * frame separator ("frame 1: "), then the instruction. The placeholders are
 * expanded to the model's image tokens by `expandImageTokens` /
 * `tokenizeConversation`, and the model takes the frames as [B·F, 3, S, S]
 * with `framesPerRow: F`.
 *
 * Papers: Huang et al., "Visual Storytelling" (VIST, 2016); Alayrac et al.,
 * "Flamingo" (2022) and Laurençon et al., "OBELICS"/Idefics (2023) for
 * interleaved image–text prompts.
 * Reference: transformers `models/llava/processing_llava.py` (one `<image>`
 * per image, expanded to the image's tokens).
 */
import { IMAGE_PLACEHOLDER } from "./conversation";
import type { Story } from "./story";

/** Options of {@link multiImagePrompt}. */
export interface MultiImagePromptArgs {
  /** Text before each frame's placeholder; `{k}` becomes the frame number (1-based). Default "" (no separators). */
  readonly frameSeparator?: string;
  /** Text after the frames and a newline (the request, e.g. "tell the story."). Default "". */
  readonly instruction?: string;
}

/** The user-turn text of an F-frame prompt, e.g. frames 2, separator "frame {k}: " → "frame 1: <image>frame 2: <image>\n…". */
export function multiImagePrompt(frames: number, args: MultiImagePromptArgs = {}): string {
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`multiImagePrompt: frames must be a positive integer, got ${JSON.stringify(frames)}`);
  const separator = args.frameSeparator ?? "";
  if (separator.includes(IMAGE_PLACEHOLDER) || (args.instruction ?? "").includes(IMAGE_PLACEHOLDER))
    throw new Error(`multiImagePrompt: the separator and instruction must not hold ${IMAGE_PLACEHOLDER} (one per frame is placed for you)`);
  const parts = Array.from({ length: frames }, (_, k) => `${separator.split("{k}").join(String(k + 1))}${IMAGE_PLACEHOLDER}`);
  return `${parts.join("")}\n${args.instruction ?? ""}`;
}

/** `<image>` placeholders in a text (before expansion). */
export function countImagePlaceholders(text: string): number {
  return text.split(IMAGE_PLACEHOLDER).length - 1;
}

/** A story's reference text: its frame sentences in order, space-separated. */
export function storyText(story: Pick<Story, "frames"> | { frames: readonly { sentence: string }[] }): string {
  return story.frames.map((frame) => frame.sentence).join(" ");
}
