/**
 * The display helpers' mime bundles: types, sizes, and content that decodes
 * (PNG, GIF, SVG, WAV, HTML, Plotly JSON) and says what was drawn.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import * as fs from "fs";
import * as path from "path";
import {
  audio,
  barPlot,
  compareImages,
  confusionCounts,
  confusionMatrix,
  display,
  heatmap,
  historyChart,
  image,
  imageGrid,
  linePlot,
  lossMask,
  modelSummary,
  patchAttention,
  resetFrontend,
  scatterPlot,
  sensorChart,
  pointCloud,
  summaryRows,
  tokenAttention,
  trainingProgress,
  video,
  viridis,
  type Rich,
} from "../kernel-extensions/index";
import { niceTicks } from "../kernel-extensions/chart";
import { hostHook, type DisplayRequest } from "../src/kernel/host";
import { initEngine } from "../src/engine/init";
import { decodeWav, encodeWav } from "../src/io/wav";
import { CLIP_MEAN, CLIP_STD } from "../src/preprocess/clip_image";
import { GPT } from "../src/models/gpt";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const sharp = require("sharp");
const png = (rich: Rich, mime = "image/png") => Buffer.from(rich.data[mime] as string, "base64");
async function rawPixels(bytes: Buffer) {
  return sharp(bytes).raw().toBuffer({ resolveWithObject: true }) as Promise<{
    data: Buffer;
    info: { width: number; height: number; channels: number };
  }>;
}
/** The SVG renders (sharp/librsvg parses it) to a picture of its stated size with something drawn on it. */
async function expectDrawnSvg(svg: string, width: number, height: number) {
  expect(svg.startsWith("<svg")).toBe(true);
  const { data, info } = await rawPixels(await sharp(Buffer.from(svg)).png().toBuffer());
  expect([info.width, info.height]).toEqual([width, height]);
  let ink = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200) ink++;
  expect(ink).toBeGreaterThan(100);
}

beforeAll(async () => {
  await initEngine({ backend: "cpu", verbose: false });
});
beforeEach(() => resetFrontend());
afterEach(() => {
  (globalThis as any)[Symbol.for("mllm-labs.kernel-host")] = undefined;
});

describe("plots (plotly + static SVG)", () => {
  it("linePlot: Plotly bundle, interactive HTML over the SVG, the library embedded in the first output only", async () => {
    const rich = linePlot(
      [
        { name: "train", y: [3, 2, 1] },
        { name: "val", x: [0, 2, 4], y: [4, 3, 2] },
      ],
      { title: "loss", xLabel: "step" },
    );
    expect(Object.keys(rich.data).sort()).toEqual(["application/vnd.plotly.v1+json", "image/svg+xml", "text/html", "text/plain"]);
    const figure = rich.data["application/vnd.plotly.v1+json"] as any;
    expect(figure.data.map((t: any) => [t.name, t.type, t.mode, t.x, t.y])).toEqual([
      ["train", "scatter", "lines", [0, 1, 2], [3, 2, 1]],
      ["val", "scatter", "lines", [0, 2, 4], [4, 3, 2]],
    ]);
    expect(figure.layout.title.text).toBe("loss");
    await expectDrawnSvg(rich.data["image/svg+xml"] as string, 480, 280);
    const first = rich.toMimeBundle().data["text/html"] as string;
    const second = linePlot([{ name: "x", y: [1, 2] }]).toMimeBundle().data["text/html"] as string;
    expect(first).toContain('data-mllm-library="plotly"');
    expect(first.length).toBeGreaterThan(1_000_000); // plotly.js itself, no CDN
    expect(second).not.toContain("data-mllm-library");
    expect(second).toContain("lib.newPlot(element");
    // The embedded library and the per-plot script are valid JavaScript, and no "</script" ends them early.
    const scripts = [...first.matchAll(/<script type="text\/javascript"[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    expect(scripts.length).toBe(2);
    for (const code of scripts) expect(() => new Function(code)).not.toThrow();
    expect(first).toContain('<div id="mllm-plot-0"');
    expect(rich.data["text/plain"]).toBe("loss — train: 3 points, first 3, last 1, min 1; val: 3 points, first 4, last 2, min 2");
  });

  it("long series are downsampled with a note; bad input is named", () => {
    const y = Array.from({ length: 10_000 }, (_, i) => Math.sin(i / 50) + (i === 4321 ? 5 : 0));
    const rich = linePlot([{ name: "signal", y }], { maxPoints: 500 });
    const trace = (rich.data["application/vnd.plotly.v1+json"] as any).data[0];
    expect(trace.y.length).toBeLessThanOrEqual(500);
    expect(Math.max(...trace.y)).toBeCloseTo(5 + Math.sin(4321 / 50), 6); // the spike survives
    expect(rich.data["image/svg+xml"]).toContain("downsampled: 10000 points drawn as ≤ 500");
    expect(() => linePlot([{ name: "bad", x: [1], y: [1, 2] }])).toThrow(/series "bad" has 1 x values and 2 y values/);
    expect(() => linePlot([])).toThrow(/no series given/);
    expect(() => linePlot([{ name: "neg", y: [1, -1] }], { logY: true })).toThrow(/series "neg" has values ≤ 0/);
  });

  it("scatterPlot and barPlot", async () => {
    const scatter = scatterPlot([{ name: "points", x: [1, 2, 3], y: [2, 4, 6] }]);
    expect((scatter.data["application/vnd.plotly.v1+json"] as any).data[0].mode).toBe("markers");
    expect((scatter.data["image/svg+xml"] as string).match(/<circle /g)!.length).toBe(3);
    const bars = barPlot(
      {
        labels: ["red", "green"],
        series: [
          { name: "a", values: [1, 2] },
          { name: "b", values: [3, 4] },
        ],
      },
      { title: "counts" },
    );
    expect((bars.data["application/vnd.plotly.v1+json"] as any).data.map((t: any) => [t.type, t.x, t.y])).toEqual([
      ["bar", ["red", "green"], [1, 2]],
      ["bar", ["red", "green"], [3, 4]],
    ]);
    await expectDrawnSvg(bars.data["image/svg+xml"] as string, 480, 280);
    expect(bars.data["text/plain"]).toBe("counts — a: red 1, green 2; b: red 3, green 4");
    expect(() => barPlot({ labels: ["a"], values: [1, 2] })).toThrow(/has 2 values for 1 labels/);
  });

  it("heatmap: from a tensor, labelled, colored by value; big matrices averaged down with a note", async () => {
    const t = tf.tensor2d([
      [0, 1],
      [2, 3],
    ]);
    const rich = await heatmap(t, { xLabels: ["a", "b"], yLabels: ["x", "y"] });
    const figure = rich.data["application/vnd.plotly.v1+json"] as any;
    expect(figure.data[0].z).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect([figure.layout.xaxis.tickvals, figure.layout.xaxis.ticktext]).toEqual([
      [0, 1],
      ["a", "b"],
    ]);
    expect(figure.layout.yaxis.range).toEqual([1.5, -0.5]); // row 0 at the top
    const svg = rich.data["image/svg+xml"] as string;
    // The lowest cell is viridis(0), the highest viridis(1).
    const hex = (c: number[]) => "#" + c.map((v) => v.toString(16).padStart(2, "0")).join("");
    expect(svg).toContain(`fill="${hex(viridis(0))}"`);
    expect(svg).toContain(`fill="${hex(viridis(1))}"`);
    expect(rich.data["text/plain"]).toBe("heatmap 2×2, min 0, max 3");
    const big = await heatmap(
      Array.from({ length: 300 }, (_, r) => Array.from({ length: 300 }, (_, c) => r + c)),
      { maxCells: 100 },
    );
    expect((big.data["application/vnd.plotly.v1+json"] as any).data[0].z.length).toBe(100);
    expect(big.data["image/svg+xml"]).toContain("averaged down from 300×300 to 100×100");
    await expect(heatmap(tf.zeros([2, 2, 2]))).rejects.toThrow(/expected a \[rows, columns\] tensor, got shape \[2, 2, 2\]/);
    await expect(heatmap([[1, 2], [3]])).rejects.toThrow(/row 1 has 1 values; row 0 has 2/);
    await expect(heatmap(t, { xLabels: ["a"] })).rejects.toThrow(/1 x labels for 2 columns/);
    t.dispose();
  });

  it("nice ticks are round numbers inside the range", () => {
    expect(niceTicks(0.121, 3.2)).toEqual([1, 2, 3]);
    expect(niceTicks(0.121, 1.2)).toEqual([0.2, 0.4, 0.6, 0.8, 1, 1.2]);
    expect(niceTicks(7, 7)).toEqual([7]);
    expect(niceTicks(0, 99, 6)).toEqual([0, 20, 40, 60, 80]);
    expect(niceTicks(-0.6, 0.6)).toEqual([-0.5, 0, 0.5]);
  });
});

describe("images and video", () => {
  it("a [B, H, W, C] batch becomes a grid PNG with captions in the HTML", async () => {
    const batch = tf.concat([tf.zeros([1, 4, 4, 3]), tf.ones([1, 4, 4, 3]), tf.fill([1, 4, 4, 3], 0.5)]);
    const rich = await image(batch, { upscale: 2, columns: 2 });
    const { data, info } = await rawPixels(png(rich));
    expect([info.width, info.height]).toEqual([2 * 8 + 4, 2 * 8 + 4]);
    expect([...data.subarray(0, 3)]).toEqual([0, 0, 0]); // image 0, top left
    expect([...data.subarray(12 * 3, 12 * 3 + 3)]).toEqual([255, 255, 255]); // image 1, top left
    expect(rich.data["text/html"]).toContain("<figcaption");
    expect(rich.data["text/plain"]).toBe("batch of 3: grid of 3 images (0 | 1 | 2)");
    batch.dispose();
  });

  it("range clip undoes CLIP normalisation of a [C, H, W] model input", async () => {
    const rgb = [200, 100, 50];
    const normalised = tf.tensor3d(
      rgb.flatMap((v, c) => [(v / 255 - CLIP_MEAN[c]) / CLIP_STD[c]]),
      [3, 1, 1],
    );
    const { data } = await rawPixels(png(await image(normalised, { layout: "chw", range: "clip", upscale: 1 })));
    expect([...data]).toEqual(rgb);
    await expect(image(normalised, { range: "clip" })).rejects.toThrow(/range "clip" needs 3 channels, got 1/); // read as [H=3, W=1, C=1]
    await expect(image(normalised, { range: "wrong" as any, layout: "chw" })).rejects.toThrow(
      /range must be unit, byte, signed, clip or auto, got "wrong"/,
    );
    normalised.dispose();
  });

  it("big images are scaled down with a note; compareImages puts them side by side", async () => {
    const big = tf.zeros([1500, 300, 3]);
    const rich = await image(big);
    expect(rich.data["text/plain"]).toMatch(/scaled down from 300×1500 to 205×1024/);
    const side = await compareImages([tf.zeros([8, 8, 3]), tf.ones([8, 8, 3])], ["input", "output"], { upscale: 1 });
    expect((await rawPixels(png(side))).info.width).toBe(8 + 4 + 8);
    await expect(compareImages([big], ["a", "b"])).rejects.toThrow(/1 images but 2 labels/);
    await expect(imageGrid([{ image: "/nonexistent.png", caption: "gone" }])).rejects.toThrow(
      /item 0 \("gone"\): image: cannot read "\/nonexistent.png"/,
    );
    big.dispose();
  });

  it("video: an animated GIF with one page per frame, and the filmstrip as PNG", async () => {
    const frames = tf.stack([0, 0.5, 1].map((v) => tf.fill([8, 8, 3], v))); // [F, H, W, C]
    const before = tf.memory().numTensors;
    const rich = await video(frames, { fps: 5, upscale: 2 });
    expect(tf.memory().numTensors).toBe(before);
    const gif = Buffer.from(/data:image\/gif;base64,([A-Za-z0-9+/=]+)/.exec(rich.data["text/html"] as string)![1], "base64");
    const meta = await sharp(gif, { animated: true }).metadata();
    expect([meta.format, meta.pages, meta.pageHeight, meta.delay]).toEqual(["gif", 3, 16, [200, 200, 200]]);
    const strip = await rawPixels(png(rich));
    expect([strip.info.width, strip.info.height, strip.info.channels]).toEqual([3 * 16 + 2 * 2, 16, 3]);
    expect([0, 15, 16, 18, 33, 36, 51].map((x) => strip.data[x * 3])).toEqual([0, 0, 255, 128, 128, 255, 255]); // frames 0, 1, 2 from the left, white 2-pixel gaps
    expect(rich.data["text/plain"]).toBe("<video [3, 8, 8, 3] float32, 3 frames of 8×8 at 5 fps>");
    const webp = await video(frames, { format: "webp", upscale: 1 });
    expect(webp.data["text/html"]).toContain("data:image/webp;base64,");
    frames.dispose();
    const dir = scratch("video-");
    await sharp({ create: { width: 30, height: 10, channels: 3, background: "#ff0000" } })
      .png()
      .toFile(path.join(dir, "strip.png"));
    expect((await video(path.join(dir, "strip.png"), { frames: 3 })).data["text/plain"]).toMatch(/3 frames of 10×10/);
    await expect(video(path.join(dir, "strip.png"), { frames: 4 })).rejects.toThrow(
      /is 30×10; give frames \(a count that divides the width 30\), got 4/,
    );
  });
});

describe("audio, sensors, attention", () => {
  it("audio: a player with the WAV embedded, its waveform SVG and a log-mel PNG", async () => {
    const rate = 16000;
    const samples = Float32Array.from({ length: rate / 2 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / rate));
    const rich = await audio(samples, { sampleRate: rate, caption: "1 kHz" });
    const markup = rich.data["text/html"] as string;
    const wav = decodeWav(Buffer.from(/data:audio\/wav;base64,([A-Za-z0-9+/=]+)/.exec(markup)![1], "base64"));
    expect([wav.sampleRate, wav.channels[0].length]).toEqual([rate, rate / 2]);
    expect(markup).toContain("<audio controls");
    // 50 frames of 10 ms, each 9 pixels wide (≤ 480), 2 pixels per mel bin.
    await expectDrawnSvg(/<svg[\s\S]*?<\/svg>/.exec(markup)![0], 450, 140);
    const mel = await rawPixels(png(rich));
    expect([mel.info.width, mel.info.height, mel.info.channels]).toEqual([450, 160, 3]);
    // The brightest row of the spectrogram is the 1 kHz band: Slaney mel 15 of 45.2 at 8 kHz, so bin ≈ 26 of 80 from the bottom.
    const brightness = Array.from({ length: 160 }, (_, y) => mel.data[(y * 450 + 225) * 3 + 1]);
    const brightest = brightness.indexOf(Math.max(...brightness));
    expect(Math.floor((159 - brightest) / 2)).toBeGreaterThanOrEqual(25);
    expect(Math.floor((159 - brightest) / 2)).toBeLessThanOrEqual(27);
    expect(rich.data["text/plain"]).toBe("1 kHz: <audio 0.50 s at 16000 Hz, 8000 samples>");
    await expect(audio(samples)).rejects.toThrow(/sampleRate is required/);
    const long = await audio(new Float32Array(3 * 8000), { sampleRate: 8000, maxSeconds: 1, pictures: false });
    expect(long.data["text/plain"]).toMatch(/cut from 3.0 s to the first 1 s/);
    const dir = scratch("audio-");
    fs.writeFileSync(path.join(dir, "a.wav"), encodeWav(samples, rate));
    expect((await audio(path.join(dir, "a.wav"), { pictures: false })).data["text/plain"]).toMatch(/a.wav 0.50 s at 16000 Hz/);
    await expect(audio(path.join(dir, "missing.wav"))).rejects.toThrow(/missing.wav/);
  });

  it("sensorChart: a line per channel against seconds", async () => {
    const window = tf.tensor2d(Array.from({ length: 100 }, (_, t) => [t, -t, 1]));
    const rich = await sensorChart(window, { sampleRate: 50, channels: ["x", "y", "z"], select: [0, 2] });
    const traces = (rich.data["application/vnd.plotly.v1+json"] as any).data;
    expect(traces.map((t: any) => t.name)).toEqual(["x", "z"]);
    expect(traces[0].x[50]).toBe(1);
    expect(traces[0].y[50]).toBe(50);
    await expect(sensorChart(window, { sampleRate: 50, select: [3] })).rejects.toThrow(
      /select has channel 3; the window has channels 0…2/,
    );
    await expect(sensorChart(window, { sampleRate: 0 })).rejects.toThrow(/sampleRate must be a positive number, got 0/);
    window.dispose();
  });

  it("pointCloud: a turning GIF with one page per view, four stills a quarter turn apart, colours and depth order", async () => {
    // A red point at +x and a blue one at −x: seen from the front (turn 0) red is on the right; half a turn later, on the left.
    const points = tf.tensor2d([
      [1, 0, 0, 1, 0, 0],
      [-1, 0, 0, 0, 0, 1],
    ]);
    const before = tf.memory().numTensors;
    const rich = await pointCloud(points, { views: 4, size: 32, pointRadius: 1, elevation: 0, fps: 5 });
    expect(tf.memory().numTensors).toBe(before);
    expect(rich.data["text/plain"]).toBe("<point cloud [2, 6] float32, 2 points, 4 views of 32×32 at 5 fps>");
    const gif = Buffer.from(/data:image\/gif;base64,([A-Za-z0-9+/=]+)/.exec(rich.data["text/html"] as string)![1], "base64");
    const meta = await sharp(gif, { animated: true }).metadata();
    expect([meta.format, meta.pages, meta.pageHeight]).toEqual(["gif", 4, 32]);
    const strip = await rawPixels(png(rich));
    expect([strip.info.width, strip.info.height]).toEqual([4 * 32 + 3 * 2, 32]);
    const at = (x: number, y: number) => [
      ...strip.data.subarray((y * strip.info.width + x) * 3, (y * strip.info.width + x) * 3 + 3),
    ];
    expect(at(29, 16)).toEqual([198, 0, 0]); // view 0: red on the right, at mid depth (shade 0.775)
    expect(at(2, 16)).toEqual([0, 0, 198]); // blue on the left
    expect(at(2 * 34 + 2, 16)).toEqual([198, 0, 0]); // view 2 (180°): red on the left
    expect(at(16, 2)).toEqual([255, 255, 255]); // background
    // A quarter turn: blue comes towards the camera, red goes behind it; both project to the centre, and the near one is drawn last, at full brightness.
    expect(at(34 + 16, 16)).toEqual([0, 0, 255]);
    await expect(pointCloud([[1, 2, 3, 4]])).rejects.toThrow(
      /expected \[N, 3\] \(xyz\) or \[N, 6\] \(xyz, rgb\) points, got 1 rows of 4/,
    );
    await expect(
      pointCloud([
        [0, 0, 0],
        [1, NaN, 0],
      ]),
    ).rejects.toThrow(/point 1 is not finite: \[1, NaN, 0\]/);
    await expect(pointCloud(points, { views: 2 })).rejects.toThrow(/views must be an integer ≥ 4, got 2/);
    points.dispose();
  });

  it("tokenAttention labels the heatmap with tokens; patchAttention paints the strongest patch", async () => {
    const weights = tf.tensor2d([
      [1, 0],
      [0.25, 0.75],
    ]);
    const rich = await tokenAttention(weights, { queryTokens: ["2", "2"], keyTokens: ["a", "b"] }); // repeated tokens stay two rows
    const figure = rich.data["application/vnd.plotly.v1+json"] as any;
    expect([
      figure.data[0].zmin,
      figure.data[0].zmax,
      figure.layout.xaxis.ticktext,
      figure.layout.yaxis.ticktext,
      figure.layout.yaxis.tickvals,
    ]).toEqual([0, 1, ["a", "b"], ["2", "2"], [0, 1]]);
    weights.dispose();
    const picture = tf.fill([16, 16, 3], 1); // white
    const heat = [0, 0, 0, 1]; // 2×2 grid: bottom right is hot
    const overlay = await patchAttention(picture, heat, { size: 64, alpha: 1 });
    const { data, info } = await rawPixels(png(overlay));
    expect([info.width, info.height]).toEqual([64 * 2 + 8, 64]);
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    expect(at(10, 10)).toEqual([255, 255, 255]); // the plain image
    expect(at(72 + 60, 60)).toEqual(viridis(1)); // hot corner of the overlay
    expect(at(72 + 3, 3)).toEqual(viridis(0));
    expect(overlay.data["text/plain"]).toMatch(/2×2 patches; strongest patch \(row 1, column 1\)/);
    await expect(patchAttention(picture, [1, 2, 3])).rejects.toThrow(/3 weights do not make a 2×2 patch grid/);
    picture.dispose();
  });

  it("lossMask: a chip per token colored by the mask, runs of an ignored token collapsed, bad input named", () => {
    const tokens = ["<|user|>", "\n", ...new Array(6).fill("<image>"), " red", "<|end|>", "<b>"];
    const supervised = [false, false, ...new Array(6).fill(false), true, true, false];
    const rich = lossMask(tokens, supervised, { title: "example" });
    const html = rich.data["text/html"] as string;
    expect(html.match(/<span style="display:inline-block/g)).toHaveLength(6); // 6 image tokens in one chip
    expect(html).toContain("&lt;image&gt; <b>×6</b>");
    expect(html).toContain("&lt;b&gt;"); // token text escaped
    expect(html.match(/background:#c8f0c8;border-radius/g)).toHaveLength(2); // the two supervised tokens
    expect(rich.data["text/plain"]).toBe(
      "example: 2 of 11 tokens supervised ([x] = in the loss)\n<|user|>|↵|<image>×6|[ red]|[<|end|>]|<b>",
    );
    expect(lossMask(["a", "a"], [false, false], { collapseRuns: 4 }).data["text/plain"]).toMatch(/\na\|a$/); // short runs stay
    expect(() => lossMask(["a", "b"], [true])).toThrow(/2 tokens but 1 mask values/);
    expect(() => lossMask([], [])).toThrow(/no tokens given/);
  });
});

describe("model summary, progress, tfjs-vis", () => {
  it("modelSummary: totals equal the model's parameters; frozen parts counted as frozen", () => {
    const model = new GPT({ vocabSize: 11, contextLength: 8, dim: 16, layers: 2, heads: 2, seed: 0 });
    model.blocks[0].setTrainable(false);
    const rows = summaryRows(model, 1);
    expect(rows[0].trainable + rows[0].frozen).toBe(model.parameterCount());
    expect(rows[0].bytes).toBe(model.parameterCount() * 4);
    const frozenBlock = rows.find((r) => r.path === "blocks.0")!;
    expect(frozenBlock.trainable).toBe(0);
    expect(rows[0].frozen).toBe(frozenBlock.frozen);
    expect(rows.every((r) => r.depth <= 1)).toBe(true);
    const rich = modelSummary(model);
    expect(rich.data["text/html"]).toContain("<table");
    expect(rich.data["text/plain"]).toContain(
      `total: ${model.parameterCount().toLocaleString("en-US")} parameters (${rows[0].trainable.toLocaleString("en-US")} trainable, ${rows[0].frozen.toLocaleString("en-US")} frozen)`,
    );
    expect(() => modelSummary({} as any)).toThrow(/expected a library Module, got object/);
    model.dispose();
  });

  it("trainingProgress: one display updated in place, throttled, ending in the final state", () => {
    const shown: DisplayRequest[] = [];
    hostHook.install({ display: (r) => shown.push(r), clearOutput: () => {} });
    let now = 0;
    const progress = trainingProgress({ total: 100, title: "fit", intervalMs: 1000, now: () => now });
    for (let step = 1; step <= 100; step++) {
      now += 100; // 10 steps per second
      progress.update(step, { loss: 10 / step });
    }
    const final = progress.done();
    expect(shown.length).toBe(1 + 9 + 1 + 1); // step 1, then once a second (steps 11, 21, …, 91), the last step, the final state
    expect(new Set(shown.map((r) => r.displayId)).size).toBe(1);
    expect(shown.map((r) => !!r.update)).toEqual([false, ...new Array(shown.length - 1).fill(true)]);
    expect(shown[5].data["text/plain"]).toMatch(/^fit: step \d+\/100 · loss [\d.]+ · 10.0 steps\/s · ETA \d:\d\d$/);
    expect(final.data["text/plain"]).toBe("fit: step 100/100 · loss 0.1 · 10.0 s · 10.0 steps/s");
    expect(final.data["text/html"]).toContain("<svg");
    expect(() => progress.update(1)).toThrow(/update after done/);
    expect(() => trainingProgress({ total: 0 })).toThrow(/total must be a positive integer, got 0/);
  });

  it("trainingProgress without a kernel: a bar on the terminal, a line per tenth when not a TTY", () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as any;
    let now = 0;
    const progress = trainingProgress({ total: 20, intervalMs: 0, stream, now: () => (now += 50) });
    for (let step = 1; step <= 20; step++) progress.update(step, { loss: 1 });
    progress.done();
    expect(lines.length).toBe(10 + 1 + 1);
    expect(lines[lines.length - 1]).toMatch(/^training \[#{24}\] 20\/20 loss 1 [\d.]+ steps\/s [\d.]+ s\n$/);
    expect(() => progress.done()).toThrow(/done\(\) called twice/);
  });

  it("tfjs-vis charts: tfjs-vis embedded once, drawing calls, static SVG", async () => {
    const history = historyChart({ loss: [2, 1, 0.5], accuracy: [0.2, 0.6, 0.9] }, { title: "fit" });
    const first = history.toMimeBundle().data["text/html"] as string;
    expect(first).toContain('data-mllm-library="tfvis"');
    expect(first).toContain("lib.show.history(element");
    await expectDrawnSvg(history.data["image/svg+xml"] as string, 480, 280);
    const counts = confusionCounts([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], 3);
    expect(counts).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [0, 0, 1],
    ]);
    const matrix = await confusionMatrix(counts, ["a", "b", "c"]);
    const bundle = matrix.toMimeBundle();
    expect(bundle.data["text/html"]).not.toContain("data-mllm-library"); // already on the page
    expect(bundle.data["text/html"]).toContain("lib.render.confusionMatrix(element");
    expect(matrix.data["text/plain"]).toBe("confusion matrix over 3 classes: 4/5 on the diagonal (accuracy 0.8000)");
    expect(() => confusionCounts([0], [3], 3)).toThrow(/pair 0 is \(0, 3\); classes are 0…2/);
    await expect(confusionMatrix(counts, ["a", "b"])).rejects.toThrow(/a 3×3 matrix for 2 class names/);
    expect(() => historyChart({ loss: [] })).toThrow(/metric "loss" has no values/);
  });

  it("display() embeds the library in what it sends, once", () => {
    const shown: DisplayRequest[] = [];
    hostHook.install({ display: (r) => shown.push(r), clearOutput: () => {} });
    display(linePlot([{ name: "a", y: [1, 2] }]));
    display(linePlot([{ name: "b", y: [1, 2] }]));
    expect(shown.map((r) => String(r.data["text/html"]).includes("data-mllm-library"))).toEqual([true, false]);
  });

  it("helpers read tensors without leaking any", async () => {
    const before = tf.memory().numTensors;
    const t = tf.randomUniform([4, 4], 0, 1, "float32", 3);
    await heatmap(t);
    await tokenAttention(t);
    await sensorChart(t, { sampleRate: 10 });
    await image(t);
    const [picture, flat] = [tf.tidy(() => t.expandDims(-1).tile([1, 1, 3])), t.reshape([16])];
    const frames = tf.stack([picture, picture]);
    await patchAttention(picture, flat);
    await video(frames);
    tf.dispose([t, picture, flat, frames]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
