/**
 * The world tokenizer: Hugging Face tokenizer.json + tokenizer_config.json
 * loaded by @huggingface/tokenizers; byte-level BPE round trips any text;
 * special tokens keep their ids; the chat template renders with
 * @huggingface/jinja; training is deterministic.
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadTokenizer, SPECIAL_TOKENS, trainWorldTokenizer, TextTokenizer } from "../src/tokenizer/tokenizer";
import { trainByteLevelBpe, bytesToUnicode } from "../src/tokenizer/bpe_trainer";
import { readJsonlFile } from "../src/data/world";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const WORLD = path.join(__dirname, "..", "data", "world");
const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));

describe("world tokenizer", () => {
  it("round-trips every test document and odd text exactly", () => {
    const texts = readJsonlFile(path.join(WORLD, "text", "test.jsonl")).map((r) => r.text as string);
    let tokens = 0;
    for (const text of texts) {
      const ids = tokenizer.encode(text);
      tokens += ids.length;
      expect(tokenizer.decode(ids)).toBe(text);
    }
    // Subwords pay off: far fewer tokens than characters.
    expect(tokens / texts.reduce((n, t) => n + t.length, 0)).toBeLessThan(0.3);
    for (const odd of ["  two  spaces\tand\ttabs\n", "Ünïcödé, emoji 🙂 and 数字 42", "", "xyzzy qwerty unseen words"]) {
      expect(tokenizer.decode(tokenizer.encode(odd))).toBe(odd);
    }
  });

  it("keeps the special tokens at their ids and never splits them", () => {
    SPECIAL_TOKENS.forEach((token, id) => expect(tokenizer.tokenId(token)).toBe(id));
    expect(tokenizer.encode("<image>\nwhat is it?")[0]).toBe(tokenizer.tokenId("<image>"));
    const ids = tokenizer.encode("a red circle", { addBos: true, addEos: true });
    expect(ids[0]).toBe(tokenizer.bosTokenId);
    expect(ids[ids.length - 1]).toBe(tokenizer.eosTokenId);
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe("a red circle");
    expect(tokenizer.tokenize("a small red circle")).toEqual(["a", "Ġsmall", "Ġred", "Ġcircle"]);
  });

  it("renders the chat template", () => {
    const text = tokenizer.applyChatTemplate(
      [
        { role: "user", content: "<image>\nwhat color is the circle?" },
        { role: "assistant", content: "red" },
        { role: "user", content: "and the square?" },
      ],
      { addGenerationPrompt: true },
    );
    expect(text).toBe(
      "<|bos|><|user|>\n<image>\nwhat color is the circle?<|end|>\n<|assistant|>\nred<|end|>\n<|user|>\nand the square?<|end|>\n<|assistant|>\n",
    );
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    expect(() => tokenizer.applyChatTemplate([{ role: "robot" as any, content: "x" }])).toThrow(
      /role must be system, user or assistant, got "robot"/,
    );
  });

  it("pads batches left or right with a mask", () => {
    const right = tokenizer.encodeBatch(["a red circle", "a star"], { addBos: true });
    expect(right.inputIds[0].length).toBe(right.inputIds[1].length);
    expect(right.attentionMask[1]).toEqual([1, 1, 1, 0]);
    expect(right.inputIds[1][3]).toBe(tokenizer.padTokenId);
    const left = tokenizer.encodeBatch(["a red circle", "a star"], { padSide: "left", maxLength: 3 });
    expect(left.attentionMask[1]).toEqual([0, 1, 1]);
    expect(left.inputIds[0]).toEqual(tokenizer.encode("a red circle").slice(0, 3));
  });

  it("names bad input", () => {
    expect(() => tokenizer.decode([tokenizer.vocabSize])).toThrow(
      new RegExp(`id ${tokenizer.vocabSize} is outside the vocabulary`),
    );
    expect(() => loadTokenizer(path.join(os.tmpdir(), "no-such-tokenizer"))).toThrow(/missing .*tokenizer.json/);
    const broken = scratch("tok-");
    fs.writeFileSync(path.join(broken, "tokenizer.json"), "{not json");
    fs.writeFileSync(path.join(broken, "tokenizer_config.json"), "{}");
    expect(() => loadTokenizer(broken)).toThrow(/tokenizer.json is not valid JSON/);
  });
});

describe("byte-level BPE training", () => {
  it("is deterministic and learns the frequent words first", () => {
    const texts = ["the red circle", "the red square", "the blue circle", "a red star"];
    const a = trainByteLevelBpe(texts, { vocabSize: 280 });
    const b = trainByteLevelBpe(texts.slice(), { vocabSize: 280 });
    expect(a).toEqual(b);
    expect(a.model.merges.length).toBeGreaterThan(5);
    expect(Object.keys(a.model.vocab)).toContain("Ġred");
    const tok = new TextTokenizer(a, { bos_token: "a", eos_token: "b", pad_token: "c" });
    expect(tok.decode(tok.encode("the red circle"))).toBe("the red circle");
    expect(tok.encode(" red").length).toBe(1);
  });

  it("maps all 256 bytes to distinct printable characters (GPT-2's table)", () => {
    const table = bytesToUnicode();
    expect(new Set(table).size).toBe(256);
    expect(table[32]).toBe("Ġ");
    expect(table[65]).toBe("A");
  });

  it("trainWorldTokenizer writes a folder that loads back the same", () => {
    const dir = scratch("tok-");
    const trained = trainWorldTokenizer(["a red circle", "a blue square", "a red square"], dir, 300);
    const loaded = loadTokenizer(dir);
    expect(loaded.encode("a red square")).toEqual(trained.encode("a red square"));
    expect(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")).chat_template).toContain(
      "add_generation_prompt",
    );
  });
});
