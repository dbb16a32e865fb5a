/** The lab media are made by scripts/make-samples.js, deterministically, and say what they show. */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const sharp = require("sharp");
const wav = require("node-wav");
const root = projectRoot();
const { makeSamples } = require(path.join(root, "scripts", "make-samples.js"));

describe("sample media", () => {
  it("regenerate to the committed pixels and samples", async () => {
    const dir = scratch("mllm-labs-samples-");
    await makeSamples(dir);
    const pixels = async (file: string) => (await sharp(file).raw().toBuffer()) as Buffer;
    expect(
      (await pixels(path.join(dir, "scene.png"))).equals(await pixels(path.join(root, "data", "samples", "scene.png"))),
    ).toBe(true);
    expect(
      fs.readFileSync(path.join(dir, "chirp.wav")).equals(fs.readFileSync(path.join(root, "data", "samples", "chirp.wav"))),
    ).toBe(true);
  });

  it("scene.png has the stated colours at the objects' centres", async () => {
    const { data, info } = await sharp(path.join(root, "data", "samples", "scene.png"))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [
      ...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3),
    ];
    expect([info.width, info.height, info.channels]).toEqual([64, 64, 3]);
    expect(at(18, 18)).toEqual([0xe6, 0x19, 0x4b]); // red circle
    expect(at(46, 18)).toEqual([0x43, 0x63, 0xd8]); // blue square
    expect(at(32, 52)).toEqual([0x3c, 0xb4, 0x4b]); // green triangle
    expect(at(2, 40)).toEqual([255, 255, 255]); // background
  });

  it("chirp.wav is 1 s at 16 kHz whose frequency rises from 300 Hz to 3 kHz", () => {
    const decoded = wav.decode(fs.readFileSync(path.join(root, "data", "samples", "chirp.wav")));
    const x: Float32Array = decoded.channelData[0];
    expect(decoded.sampleRate).toBe(16000);
    expect(x.length).toBe(16000);
    // Zero crossings per second ≈ 2 × frequency: count them in the first and last 50 ms.
    const crossings = (from: number) => {
      let n = 0;
      for (let i = from + 1; i < from + 800; i++) if (Math.sign(x[i]) !== Math.sign(x[i - 1])) n++;
      return n / 0.05 / 2;
    };
    expect(crossings(400)).toBeGreaterThan(250);
    expect(crossings(400)).toBeLessThan(500);
    expect(crossings(14800)).toBeGreaterThan(2700);
    expect(crossings(14800)).toBeLessThan(3100);
  });
});
