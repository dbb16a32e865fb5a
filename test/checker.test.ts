import { describe, expect, it } from "vitest";
import { ALWAYS_SANITIZERS, sanitize, sanitizersFor } from "../src/checker/sanitize";
import {
  compareEncodedImages,
  compareJson,
  compareText,
  numbersClose,
  perceptualDistance,
  splitNumbers,
} from "../src/checker/compare";
import { compareNotebooks, formatReport } from "../src/checker/check";
import { notebook, stdout } from "./helpers/notebook_builder";

const sharp = require("sharp");

describe("sanitizers", () => {
  it("replace paths, timings, rates, memory sizes and dates", () => {
    const text =
      "saved /home/ada/labs/out.ipynb in 12.5 s (3.2 steps/s, 41ms/step), used 12.3 MB, 2048 bytes at 2026-11-26T05:24:17Z, ETA 01:02";
    expect(sanitize(text)).toBe("saved <path> in <time> (<time>, <time>), used <bytes>, <bytes> at <date>, <time>");
  });

  it("remove the tfjs banner but keep the surrounding output", () => {
    const banner =
      "before\n\n============================\nHi, looks like you are running TensorFlow.js in Node.js. To speed things up dramatically, install our node backend, visit https://github.com/tensorflow/tfjs-node for more details. \n============================\nafter\n";
    expect(sanitize(banner).replace(/\n+/g, "\n")).toBe("before\nafter\n");
  });

  it("leave numbers that are results alone", () => {
    expect(sanitize("loss 0.4123 accuracy 97.5% step 150")).toBe("loss 0.4123 accuracy 97.5% step 150");
  });

  it("replace durations only for check-sanitize-time and sizes only for check-sanitize-bytes; paths and dates always", () => {
    const text = "saved /home/ada/out.ipynb at 2026-11-26T05:24:17Z in 12.5 s (3.2 steps/s, ETA 01:02), used 12.3 MB";
    expect(sanitize(text, ALWAYS_SANITIZERS)).toBe("saved <path> at <date> in 12.5 s (3.2 steps/s, ETA 01:02), used 12.3 MB");
    expect(sanitize(text, sanitizersFor([]))).toBe(sanitize(text, ALWAYS_SANITIZERS));
    expect(sanitize(text, sanitizersFor(["check-sanitize-time"]))).toBe(
      "saved <path> at <date> in <time> (<time>, <time>), used 12.3 MB",
    );
    expect(sanitize(text, sanitizersFor(["check-sanitize-bytes"]))).toBe(
      "saved <path> at <date> in 12.5 s (3.2 steps/s, ETA 01:02), used <bytes>",
    );
    expect(sanitize(text, sanitizersFor(["check-sanitize-time", "check-sanitize-bytes"]))).toBe(sanitize(text));
  });
});

describe("number tolerance", () => {
  it("splits text into skeleton and numbers, keeping identifiers whole", () => {
    expect(splitNumbers("conv2d out [2, 64] loss=1.5e-3 NaN")).toEqual({
      skeleton: "conv2d out [#, #] loss=# #",
      numbers: ["2", "64", "1.5e-3", "NaN"],
    });
  });

  it("compares within atol + rtol·|want|", () => {
    const tolerance = { rtol: 1e-3, atol: 1e-6 };
    expect(numbersClose(1.0005, 1, tolerance)).toBe(true);
    expect(numbersClose(1.002, 1, tolerance)).toBe(false);
    expect(numbersClose(5e-7, 0, tolerance)).toBe(true);
    expect(numbersClose(NaN, NaN, tolerance)).toBe(true);
    expect(numbersClose(Infinity, 1e300, tolerance)).toBe(false);
  });

  it("reports a changed number with both values, and changed words as a text difference", () => {
    expect(compareText("loss 0.5001", "loss 0.5000", { rtol: 1e-3, atol: 0 })).toEqual([]);
    const [numberDiff] = compareText("loss 0.61", "loss 0.50", { rtol: 1e-3, atol: 0 });
    expect(numberDiff.message).toMatch(/got 0.61, want 0.50/);
    const [textDiff] = compareText("accuracy 0.5", "loss 0.5");
    expect(textDiff.message).toMatch(/text differs, line 1/);
  });

  it("compares JSON structurally", () => {
    expect(compareJson({ x: [1, 2.00001], name: "a" }, { x: [1, 2], name: "a" }, { rtol: 1e-4, atol: 0 })).toEqual([]);
    expect(compareJson({ x: [1, 3] }, { x: [1, 2] }).map((d) => d.where)).toEqual(["$.x[1]"]);
    expect(compareJson({ y: 1 }, { x: 1 }).map((d) => `${d.where} ${d.message}`)).toEqual(["$.x missing", "$.y unexpected"]);
  });
});

async function png(draw: (pixels: Buffer) => void, size = 32): Promise<string> {
  const pixels = Buffer.alloc(size * size * 3, 255);
  draw(pixels);
  return (
    await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toBuffer()
  ).toString("base64");
}

describe("image comparison", () => {
  it("scores an identical image 0, a re-encoded one near 0, a different drawing far above the threshold", async () => {
    const square = await png((p) => {
      for (let y = 8; y < 24; y++) for (let x = 8; x < 24; x++) p.fill(0, (y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
    });
    const moved = await png((p) => {
      for (let y = 0; y < 16; y++) for (let x = 16; x < 32; x++) p.fill(0, (y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
    });
    const jpeg = (await sharp(Buffer.from(square, "base64")).jpeg({ quality: 90 }).toBuffer()) as Buffer;
    expect((await perceptualDistance(Buffer.from(square, "base64"), Buffer.from(square, "base64"))).distance).toBe(0);
    expect((await perceptualDistance(jpeg, Buffer.from(square, "base64"))).distance).toBeLessThan(0.01);
    expect(await compareEncodedImages(square, square)).toEqual([]);
    const differences = await compareEncodedImages(moved, square);
    expect(differences.map((d) => d.where)).toEqual(["image"]);
    expect(differences[0].message).toMatch(/perceptual distance 0\.\d+ > threshold 0.02/);
  });

  it("reports an undecodable image instead of crashing", async () => {
    const [difference] = await compareEncodedImages(Buffer.from("not an image").toString("base64"), await png(() => undefined));
    expect(difference.message).toMatch(/cannot decode/);
  });
});

describe("notebook check", () => {
  const reference = notebook([
    {
      source: "train()",
      outputs: [stdout("step 1 loss 2.3456 (0.8 s)\n"), stdout("step 2 loss 1.2345 (0.7 s)\n")],
      tags: ["check-sanitize-time"],
    },
    {
      source: "accuracy()",
      outputs: [{ output_type: "execute_result", execution_count: 2, data: { "text/plain": ["0.91"] }, metadata: {} }],
    },
  ]);

  it("passes a run that differs only in timings and stream chunking", async () => {
    const run = notebook([
      { source: "train()", outputs: [stdout("step 1 loss 2.3456 (1.9 s)\nstep 2 loss 1.2345 (2.0 s)\n")] },
      {
        source: "accuracy()",
        outputs: [{ output_type: "execute_result", execution_count: 2, data: { "text/plain": ["0.91"] }, metadata: {} }],
      },
    ]);
    expect(await compareNotebooks(run, reference)).toEqual([]);
  });

  it("reports each changed number, a missing output, and a changed source, naming the cell", async () => {
    const run = notebook([
      { source: "train()", outputs: [stdout("step 1 loss 2.3456 (0.8 s)\nstep 2 loss 1.3000 (0.7 s)\n")] },
      { source: "accuracy(true)", outputs: [] },
    ]);
    const differences = await compareNotebooks(run, reference);
    const report = formatReport(differences, "run.ipynb", "ref.ipynb");
    expect(report).toMatch(/cell 1 \(train\(\)\), output 1 \(stream stdout\): number 4: got 1.3000, want 1.2345/);
    expect(report).toMatch(/cell 2 \(accuracy\(\)\), source/);
    expect(report).toMatch(/cell 2 \(accuracy\(\)\), outputs: count: got 0 outputs/);
    expect(report).toMatch(/3 differences/);
  });

  it("honours check-rtol and check-ignore-output tags", async () => {
    const tagged = notebook([
      { source: "a", outputs: [stdout("value 1.05\n")], tags: ["check-rtol=0.1"] },
      { source: "b", outputs: [stdout("random 0.123\n")], tags: ["check-ignore-output"] },
    ]);
    const run = notebook([
      { source: "a", outputs: [stdout("value 1.00\n")] },
      { source: "b", outputs: [stdout("random 0.999\n")] },
    ]);
    expect(await compareNotebooks(run, tagged)).toEqual([]);
    const strict = notebook([
      { source: "a", outputs: [stdout("value 1.05\n")] },
      { source: "b", outputs: [stdout("random 0.123\n")] },
    ]);
    expect((await compareNotebooks(run, strict)).length).toBe(2);
  });

  it("compares durations and sizes like any number unless the cell's tags (in either notebook) say to sanitize them", async () => {
    const cells = (timing: string, memory: string, tags: string[] = []) =>
      notebook([
        { source: "time()", outputs: [stdout(`trained in ${timing}\n`)], tags },
        { source: "memory()", outputs: [stdout(`weights ${memory} in /tmp/run-1/model\n`)], tags },
      ]);
    const reference = cells("12.3 s", "40.5 MB");
    const run = notebook([
      { source: "time()", outputs: [stdout("trained in 15.0 s\n")] },
      { source: "memory()", outputs: [stdout("weights 52.0 MB in /home/ada/run-2/model\n")] },
    ]);
    const untagged = await compareNotebooks(run, reference);
    expect(untagged.map((d) => `${d.cell} ${d.difference.message}`)).toEqual([
      expect.stringMatching(/^1 got 15\.0, want 12\.3 .*only durations differ: tag the cell check-sanitize-time if/),
      expect.stringMatching(/^2 got 52\.0, want 40\.5 .*only memory sizes differ: tag the cell check-sanitize-bytes if/),
    ]);
    // The path differs too, but paths are sanitized in every cell: only the numbers are reported.
    expect(untagged).toHaveLength(2);

    const timeTagged = notebook([
      { source: "time()", outputs: [stdout("trained in 12.3 s\n")], tags: ["check-sanitize-time"] },
      { source: "memory()", outputs: [stdout("weights 40.5 MB in /tmp/run-1/model\n")], tags: ["check-sanitize-bytes"] },
    ]);
    expect(await compareNotebooks(run, timeTagged)).toEqual([]);
    // Tags in the executed notebook count as well.
    const runTagged = notebook([
      { source: "time()", outputs: [stdout("trained in 15.0 s\n")], tags: ["check-sanitize-time"] },
      { source: "memory()", outputs: [stdout("weights 52.0 MB in /home/ada/run-2/model\n")], tags: ["check-sanitize-bytes"] },
    ]);
    expect(await compareNotebooks(runTagged, reference)).toEqual([]);
    // One tag does not sanitize the other kind: a size in a time-tagged cell still compares.
    const swapped = cells("12.3 s", "40.5 MB", []);
    swapped.cells[0].metadata = { tags: ["check-sanitize-bytes"] };
    swapped.cells[1].metadata = { tags: ["check-sanitize-time"] };
    expect((await compareNotebooks(run, swapped)).map((d) => d.cell)).toEqual([1, 2]);
    // A changed result next to a duration gets no hint: sanitizing would not make it match.
    const [changed] = await compareNotebooks(
      notebook([{ source: "time()", outputs: [stdout("loss 0.7 in 15.0 s\n")] }]),
      notebook([{ source: "time()", outputs: [stdout("loss 0.5 in 12.3 s\n")] }]),
    );
    expect(changed.difference.message).toMatch(/got 0\.7, want 0\.5/);
    expect(changed.difference.message).not.toMatch(/check-sanitize/);
  });

  it("rejects a malformed tolerance tag with the tag quoted", async () => {
    const bad = notebook([{ source: "a", outputs: [stdout("1\n")], tags: ["check-rtol=lots"] }]);
    await expect(compareNotebooks(bad, bad)).rejects.toThrow(/"check-rtol=lots"/);
  });
});
