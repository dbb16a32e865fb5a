/**
 * Kernel extensions: rich display for the labs, imported as
 *   import { display, image, audio, linePlot } from "mllm-labs/display";
 */
export { Rich, display, clearOutput, html, escapeHtml, type DisplayOptions, type MimeData } from "./rich";
export { image, tensorToPng, type ImageArgs } from "./image";
export { audio, encodeWav, type AudioArgs } from "./audio";
export { linePlot, type Series, type LinePlotArgs } from "./plot";
