/**
 * The browser test: an executed solution notebook, opened in Debian's classic
 * Jupyter Notebook by headless Chromium and run through the lab kernel, shows
 * its images, audio player, plotly and tfjs-vis charts and progress display,
 * with no JavaScript error. Screenshots go to artifacts/browser/.
 *
 * `.ci/run` installs Chromium and jupyter-notebook and sets
 * MLLM_REQUIRE_SYSTEM=1 (MLLM_REQUIRE_BROWSER=1 still works), so in CI a
 * missing browser is a failure; elsewhere the test is skipped, saying why,
 * when they are not installed (test/helpers/system.ts).
 */
import { describe, expect, it } from "vitest";
import * as path from "path";
import { runNotebookInBrowser } from "./browser/notebook_in_browser";
import { CHROMIUM, JUPYTER_NOTEBOOK, missingSystem, systemRequired } from "./helpers/system";

const root = path.resolve(__dirname, "..");
const missing = missingSystem("browser test", CHROMIUM, JUPYTER_NOTEBOOK);

describe.skipIf(missing.length > 0 && !systemRequired())("the labs in a browser", () => {
  it("00-foundations: every output kind renders in the classic Notebook, with no JavaScript error", async () => {
    expect(missing, "CI needs these installed").toEqual([]);
    const report = await runNotebookInBrowser({
      root,
      notebook: "solutions/00-foundations.ipynb",
      artifacts: path.join(root, "artifacts", "browser"),
      log: (line) => console.log(`browser: ${line}`),
    });
    console.log(
      `browser: ${report.cellsRun} cells in ${report.seconds.toFixed(0)} s; images ${report.images.drawn}/${report.images.count}, audio ${report.audio.playable}/${report.audio.count}, plotly ${report.plotly.drawn}/${report.plotly.count}, tfjs-vis ${report.tfvis.drawn}/${report.tfvis.count}, progress ${report.progress.drawn}/${report.progress.count}; screenshots in artifacts/browser/`,
    );
    if (report.pageLoadErrors.length)
      console.log(`browser: Jupyter's page logged while loading (not ours):\n  ${report.pageLoadErrors.join("\n  ")}`);
    expect(report.errorCells, "cells whose output is an error").toEqual([]);
    expect(report.javascriptErrors).toEqual([]);
    expect(report.images.count).toBeGreaterThanOrEqual(4);
    expect(report.images.drawn).toBe(report.images.count);
    expect(report.audio.count).toBe(1);
    expect(report.audio.playable).toBe(1);
    expect(report.audio.drawn).toBe(1);
    expect(report.plotly.count).toBe(3); // the loss curve, the attention heatmap, the sensor chart
    expect(report.plotly.drawn).toBe(3);
    expect(report.tfvis.count).toBe(1); // the confusion matrix
    expect(report.tfvis.drawn).toBe(1);
    expect(report.progress.count).toBe(1); // one display, updated in place
    expect(report.progress.drawn).toBe(1);
    expect(report.progress.texts[0]).toMatch(/sorting GPT: step 150\/150 · loss [\d.]+ · [\d.]+ s/);
  }, 600_000);
});
