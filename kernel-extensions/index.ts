/**
 * Kernel extensions: rich display for the labs, imported as
 *   import { display, image, audio, linePlot, trainingProgress } from "mllm-labs/display";
 *
 * Every helper returns a {@link Rich} (a mime bundle with a text fallback):
 * the last value of a cell shows itself; `display(rich)` shows one anywhere.
 * Tensors are read with `await t.data()`, so every backend works, WebGPU too.
 */
export { Rich, display, clearOutput, html, escapeHtml, type DisplayOptions, type MimeData } from "./rich";
export {
  image,
  imageGrid,
  compareImages,
  tensorToPng,
  tensorPixels,
  pixelsToPng,
  type ImageArgs,
  type GridItem,
  type Pixels,
  type PixelRange,
} from "./image";
export { audio, encodeWav, logMelPicture, waveformSvg, type AudioArgs } from "./audio";
export { video, animate, type VideoArgs } from "./video";
export { linePlot, scatterPlot, barPlot, heatmap, type Series, type PlotArgs, type HeatmapArgs } from "./plot";
export { sensorChart, type SensorChartArgs } from "./sensors";
export { pointCloud, type PointCloudArgs } from "./points";
export { tokenAttention, patchAttention, type TokenAttentionArgs, type PatchAttentionArgs } from "./attention";
export { lossMask, type LossMaskArgs } from "./tokens";
export { modelSummary, summaryRows, type ModelSummaryArgs, type SummaryRow } from "./model_summary";
export { trainingProgress, TrainingProgress, type ProgressArgs, type StepMetrics } from "./progress";
export { historyChart, confusionMatrix, confusionCounts, type TfvisArgs } from "./tfvis";
export { resetFrontend, FRONTEND_LIBRARIES } from "./frontend";
export { viridis, colorize } from "./colormap";
