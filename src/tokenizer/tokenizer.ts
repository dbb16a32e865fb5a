/**
 * The labs' tokenizer: a Hugging Face tokenizer folder (`tokenizer.json`,
 * `tokenizer_config.json`) loaded with `@huggingface/tokenizers` (the
 * Tokenizers.js port of the Rust library) and chat templates rendered with
 * `@huggingface/jinja`, exactly as transformers' `apply_chat_template` does.
 *
 * The world tokenizer (`trainWorldTokenizer`) is byte-level BPE trained on
 * the world's text with these special tokens, at fixed ids:
 */
import * as fs from "fs";
import * as path from "path";
import { trainByteLevelBpe, type TokenizerJson } from "./bpe_trainer";

/** Special tokens of the world tokenizer, in id order. `<image>` etc. are the placeholders VLM labs expand into features. */
export const SPECIAL_TOKENS = [
  "<|pad|>",
  "<|bos|>",
  "<image>",
  "<|eos|>",
  "<audio>",
  "<video>",
  "<|system|>",
  "<|user|>",
  "<|assistant|>",
  "<|end|>",
] as const;

/** The world tokenizer's chat template: `<|bos|>` then `<|role|>\ncontent<|end|>\n` per message; a generation prompt opens the assistant's turn. */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface EncodeOptions {
  /** Prepend the BOS token. Default false. */
  readonly addBos?: boolean;
  /** Append the EOS token. Default false. */
  readonly addEos?: boolean;
}

export interface BatchEncoding {
  /** [B][T] token ids, right-padded (or left-padded) with the pad id. */
  readonly inputIds: number[][];
  /** [B][T] 1 for tokens, 0 for padding. */
  readonly attentionMask: number[][];
}

/** A loaded tokenizer: encode, decode, batch and chat templates. */
export class TextTokenizer {
  readonly vocabSize: number;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  private readonly tokenizer: any;
  private readonly template: any;
  private readonly idToToken: Map<number, string>;

  constructor(
    readonly tokenizerJson: TokenizerJson | Record<string, any>,
    readonly config: Record<string, any>,
  ) {
    const { Tokenizer } = require("@huggingface/tokenizers");
    this.tokenizer = new Tokenizer(tokenizerJson, config);
    const model = (tokenizerJson as any).model;
    const vocab: Record<string, number> = { ...(model?.vocab ?? {}) };
    for (const added of (tokenizerJson as any).added_tokens ?? []) vocab[added.content] = added.id;
    this.idToToken = new Map(Object.entries(vocab).map(([token, id]) => [id, token]));
    this.vocabSize = Math.max(...this.idToToken.keys()) + 1;
    const idOf = (name: string) => {
      const token = typeof config[name] === "string" ? config[name] : config[name]?.content;
      if (token === undefined) throw new Error(`tokenizer_config.json: missing ${name}`);
      const id = vocab[token];
      if (id === undefined) throw new Error(`tokenizer_config.json: ${name} ${JSON.stringify(token)} is not in the vocabulary`);
      return id;
    };
    this.padTokenId = idOf("pad_token");
    this.bosTokenId = idOf("bos_token");
    this.eosTokenId = idOf("eos_token");
    if (config.chat_template) {
      const { Template } = require("@huggingface/jinja");
      this.template = new Template(config.chat_template);
    }
  }

  /** The id of a token string (e.g. "<image>"); throws when it is not in the vocabulary. */
  tokenId(token: string): number {
    for (const [id, text] of this.idToToken) if (text === token) return id;
    throw new Error(`tokenizer: token ${JSON.stringify(token)} is not in the vocabulary`);
  }

  /** Token ids of `text` (special tokens written in the text, like "<image>", become their ids). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new Error(`tokenizer.encode: text must be a string, got ${typeof text}`);
    const ids: number[] = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    return [...(options.addBos ? [this.bosTokenId] : []), ...ids, ...(options.addEos ? [this.eosTokenId] : [])];
  }

  /** Token strings of `text` (byte-level symbols, e.g. "Ġred"). */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.idToToken.get(id)!);
  }

  /** Text of token ids; special tokens dropped when `skipSpecialTokens` (default false). */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new Error(`tokenizer.decode: id ${id} is outside the vocabulary 0…${this.vocabSize - 1}`);
    if (ids.length === 0) return "";
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** Renders messages with the chat template (`tokenize` false: the text; true: its ids). */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    if (!this.template) throw new Error("tokenizer: tokenizer_config.json has no chat_template");
    for (const m of messages) {
      if (!["system", "user", "assistant"].includes(m.role))
        throw new Error(`applyChatTemplate: role must be system, user or assistant, got ${JSON.stringify(m.role)}`);
    }
    return this.template.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: this.idToToken.get(this.bosTokenId),
      eos_token: this.idToToken.get(this.eosTokenId),
    });
  }

  /** Encodes texts to one length: truncated to `maxLength` (default the longest), padded right (or left). */
  encodeBatch(
    texts: readonly string[],
    options: EncodeOptions & { maxLength?: number; padSide?: "left" | "right" } = {},
  ): BatchEncoding {
    const encoded = texts.map((t) => this.encode(t, options));
    const length = options.maxLength ?? Math.max(1, ...encoded.map((e) => e.length));
    const inputIds: number[][] = [];
    const attentionMask: number[][] = [];
    for (const ids of encoded) {
      const kept = ids.slice(0, length);
      const pad = new Array(length - kept.length).fill(this.padTokenId);
      const ones = new Array(kept.length).fill(1);
      const zeros = new Array(length - kept.length).fill(0);
      if (options.padSide === "left") {
        inputIds.push([...pad, ...kept]);
        attentionMask.push([...zeros, ...ones]);
      } else {
        inputIds.push([...kept, ...pad]);
        attentionMask.push([...ones, ...zeros]);
      }
    }
    return { inputIds, attentionMask };
  }
}

/** Loads `tokenizer.json` + `tokenizer_config.json` from a folder; errors name the missing or broken file. */
export function loadTokenizer(directory: string): TextTokenizer {
  const read = (name: string) => {
    const file = path.join(directory, name);
    if (!fs.existsSync(file)) throw new Error(`loadTokenizer: missing ${file}`);
    try {
      return JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (error) {
      throw new Error(`loadTokenizer: ${file} is not valid JSON (${(error as Error).message})`);
    }
  };
  return new TextTokenizer(read("tokenizer.json"), read("tokenizer_config.json"));
}

/** tokenizer_config.json of the world tokenizer. */
export function worldTokenizerConfig(modelMaxLength = 128): Record<string, unknown> {
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: "<|bos|>",
    eos_token: "<|eos|>",
    pad_token: "<|pad|>",
    unk_token: null,
    image_token: "<image>",
    audio_token: "<audio>",
    video_token: "<video>",
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    chat_template: CHAT_TEMPLATE,
    added_tokens_decoder: Object.fromEntries(
      SPECIAL_TOKENS.map((content, id) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };
}

/** Trains the world tokenizer on `texts` and writes it to `directory`. */
export function trainWorldTokenizer(texts: Iterable<string>, directory: string, vocabSize = 1024): TextTokenizer {
  const json = trainByteLevelBpe(texts, { vocabSize, specialTokens: SPECIAL_TOKENS });
  const config = worldTokenizerConfig();
  fs.mkdirSync(directory, { recursive: true });
  for (const [name, value] of [
    ["tokenizer.json", json],
    ["tokenizer_config.json", config],
  ] as const) {
    const file = path.join(directory, name);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2) + "\n");
    fs.renameSync(`${file}.tmp`, file);
  }
  return new TextTokenizer(json, config);
}
