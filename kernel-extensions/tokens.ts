/**
 * A token sequence with the loss mask on it: each token a colored chip, green
 * where the loss sees it (its label is the token), grey where it does not
 * (label −100), so that an instruction-tuning example shows at a glance which
 * of its tokens train the model. Runs of one repeated ignored token (an
 * image's placeholder positions) are shown as one chip with a count.
 *
 * Reference: the label masking of haotian-liu/LLaVA `llava/train/train.py`
 * (`preprocess_v1`: `target[cur_len : cur_len + instruction_len] = IGNORE_INDEX`).
 */
import { escapeHtml, Rich } from "./rich";

/** Options for {@link lossMask}. */
export interface LossMaskArgs {
  /** A line above the tokens. Default none. */
  title?: string;
  /** Runs of the same ignored token longer than this become one chip "token ×n". Default 4. */
  collapseRuns?: number;
}

const SUPERVISED = { background: "#c8f0c8", border: "#3a9a3a" };
const IGNORED = { background: "#eeeeee", border: "#bbbbbb" };

/** How a token reads on a chip: newlines and tabs made visible (spaces stay, the chip keeps them). */
function visible(token: string): string {
  return token.replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

/**
 * Tokens colored by the loss mask.
 * @param tokens each token's text (e.g. `tokenizer.decode([id])`)
 * @param supervised per token: does the loss see it (its label is not −100)
 */
export function lossMask(tokens: readonly string[], supervised: readonly boolean[], args: LossMaskArgs = {}): Rich {
  if (!Array.isArray(tokens) || tokens.length === 0) throw new Error("lossMask: no tokens given");
  if (!Array.isArray(supervised) || supervised.length !== tokens.length)
    throw new Error(`lossMask: ${tokens.length} tokens but ${Array.isArray(supervised) ? supervised.length : "no"} mask values`);
  const collapse = args.collapseRuns ?? 4;
  if (!(Number.isInteger(collapse) && collapse >= 1))
    throw new Error(`lossMask: collapseRuns must be an integer ≥ 1, got ${collapse}`);
  const chips: { text: string; supervised: boolean; count: number }[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const last = chips[chips.length - 1];
    if (last && !supervised[t] && !last.supervised && last.text === tokens[t]) last.count++;
    else chips.push({ text: tokens[t], supervised: supervised[t], count: 1 });
  }
  const expanded = chips.flatMap((chip) =>
    chip.count > collapse ? [chip] : Array.from({ length: chip.count }, () => ({ ...chip, count: 1 })),
  );
  const kept = supervised.filter(Boolean).length;
  const summary = `${kept} of ${tokens.length} tokens supervised`;
  const chipHtml = expanded
    .map((chip) => {
      const colors = chip.supervised ? SUPERVISED : IGNORED;
      const label = escapeHtml(visible(chip.text)) + (chip.count > 1 ? ` <b>×${chip.count}</b>` : "");
      return `<span style="display:inline-block;white-space:pre;margin:1px;padding:0 2px;border:1px solid ${colors.border};background:${colors.background};border-radius:3px">${label}</span>`;
    })
    .join("");
  const legend =
    `<span style="background:${SUPERVISED.background};border:1px solid ${SUPERVISED.border};padding:0 4px">in the loss</span> ` +
    `<span style="background:${IGNORED.background};border:1px solid ${IGNORED.border};padding:0 4px">−100 (ignored)</span> · ${summary}`;
  const markup =
    `<div class="mllm-loss-mask" style="font-family:monospace;font-size:12px;line-height:1.9">` +
    `${args.title ? `<div style="font-family:sans-serif;font-weight:bold">${escapeHtml(args.title)}</div>` : ""}` +
    `<div style="font-family:sans-serif">${legend}</div><div>${chipHtml}</div></div>`;
  const text =
    `${args.title ? `${args.title}: ` : ""}${summary} ([x] = in the loss)\n` +
    expanded
      .map(
        (chip) =>
          `${chip.supervised ? "[" : ""}${visible(chip.text)}${chip.count > 1 ? `×${chip.count}` : ""}${chip.supervised ? "]" : ""}`,
      )
      .join("|");
  return new Rich({ "text/plain": text, "text/html": markup });
}
