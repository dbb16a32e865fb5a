import { afterEach, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { audio, clearOutput, display, encodeWav, html, image, linePlot, Rich } from "../kernel-extensions/index";
import { hostHook, type DisplayRequest } from "../src/kernel/host";
import { valueBundle } from "../src/kernel/value_bundle";
import { initEngine } from "../src/engine/init";
import { decodeWav, readWav } from "../src/io/wav";

const sharp = require("sharp");

beforeAll(async () => {
  await initEngine({ backend: "cpu", verbose: false });
});

describe("display helpers", () => {
  afterEach(() => {
    (globalThis as any)[Symbol.for("mllm-labs.kernel-host")] = undefined;
  });

  it("image: a float tensor becomes a valid PNG of the stated size, values mapped from [0, 1]", async () => {
    const t = tf.tensor3d(
      [
        [
          [0, 0.5, 1],
          [1, 1, 1],
        ],
      ],
      [1, 2, 3],
    );
    const rich = await image(t, { upscale: 1 });
    expect(rich.data["text/plain"]).toBe("<image [1, 2, 3] float32>");
    const png = Buffer.from(rich.data["image/png"] as string, "base64");
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([2, 1, 3]);
    expect([...data]).toEqual([0, 128, 255, 255, 255, 255]);
    t.dispose();
  });

  it("image: rejects a bad shape or an unreadable file, quoting it", async () => {
    const t = tf.zeros([2, 2, 2]);
    await expect(image(t)).rejects.toThrow(/expected 1, 3 or 4 channels, got 2/);
    await expect(image("/nonexistent/picture.png")).rejects.toThrow(/cannot read "\/nonexistent\/picture.png" as an image/);
    t.dispose();
  });

  it("audio: embeds a WAV that decodes back to the samples", async () => {
    const samples = new Float32Array([0, 0.5, -0.5, 0.25]);
    const rich = await audio(samples, { sampleRate: 8000, caption: "tone" });
    const base64 = /data:audio\/wav;base64,([A-Za-z0-9+/=]+)/.exec(rich.data["text/html"] as string)![1];
    const decoded = decodeWav(Buffer.from(base64, "base64"));
    expect(decoded.sampleRate).toBe(8000);
    expect(Array.from(decoded.channels[0]).map((v) => Math.round(v * 4) / 4)).toEqual([0, 0.5, -0.5, 0.25]);
    expect(rich.data["text/plain"]).toBe("tone: <audio 0.00 s at 8000 Hz, 4 samples>");
    expect(() => encodeWav(samples, 0)).toThrow(/sampleRate must be a positive integer, got 0/);
  });

  it("WAV decoding: small pooled buffers work; a corrupt or missing file is named", () => {
    const small = Buffer.from(encodeWav(new Float32Array([0.25, -0.25]), 16000).toString("base64"), "base64"); // a slice of Node's pool
    expect(small.byteOffset).toBeGreaterThan(0);
    expect(decodeWav(small).channels[0].length).toBe(2);
    expect(() => decodeWav(Buffer.from("not a wav file at all, but long enough to have a header......"), "clip.wav")).toThrow(
      /clip.wav is not a WAV file/,
    );
    const truncated = Buffer.from(encodeWav(new Float32Array(100), 16000)).subarray(0, 40);
    expect(() => decodeWav(truncated, "cut.wav")).toThrow(
      /cut.wav is not a WAV file \(expected a RIFF\/WAVE header, got 40 bytes/,
    );
    expect(() => readWav("/nonexistent/clip.wav")).toThrow(/cannot read WAV file "\/nonexistent\/clip.wav": it does not exist/);
  });

  it("linePlot: an SVG that sharp can render, with a text summary", async () => {
    const rich = linePlot([{ name: "loss", y: [3, 2, 1] }], { title: "training" });
    expect(rich.data["text/plain"]).toBe("training — loss: 3 points, first 3, last 1, min 1");
    const rendered = await sharp(Buffer.from(rich.data["image/svg+xml"] as string))
      .png()
      .toBuffer();
    expect((await sharp(rendered).metadata()).width).toBe(480);
    expect(() => linePlot([{ name: "bad", x: [1], y: [1, 2] }])).toThrow(/has 1 x values and 2 y values/);
  });

  it("display goes to the kernel host when there is one, else prints the text", () => {
    const shown: DisplayRequest[] = [];
    const cleared: boolean[] = [];
    hostHook.install({ display: (r) => shown.push(r), clearOutput: (w) => cleared.push(w) });
    display(html("<i>x</i>"), { displayId: "p" });
    clearOutput(true);
    expect(shown).toEqual([
      { data: { "text/plain": "x", "text/html": "<i>x</i>" }, metadata: {}, displayId: "p", update: undefined },
    ]);
    expect(cleared).toEqual([true]);
  });

  it("a Rich value is the cell's execute_result bundle; other values are text", () => {
    expect(valueBundle(new Rich({ "text/plain": "t", "text/html": "<b>t</b>" }))).toEqual({
      data: { "text/plain": "t", "text/html": "<b>t</b>" },
      metadata: {},
    });
    expect(valueBundle({ a: [1, 2] }).data["text/plain"]).toBe("{ a: [ 1, 2 ] }");
    const t = tf.tensor1d([1, 2]);
    expect(valueBundle(t).data["text/plain"]).toMatch(/Tensor\s+\[1, 2\]/);
    t.dispose();
    expect(valueBundle(t).data["text/plain"]).toBe("Tensor (disposed) shape [2] float32");
  });
});
