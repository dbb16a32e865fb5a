/**
 * Parity and the 4-bit dequantize kernel on a real GPU (WebGPU): packed with
 * `../shared/tools/device-pack bench/device_parity.js`, run as `node .devpack/app.mjs` from the
 * repository root (it reads test/fixtures). CLIP preprocessing needs sharp and is left out.
 */
"use strict";
const path = require("path");
const lib = require("../dist/src/index.js");
(async () => {
  const engine = await lib.initEngine({ backend: "webgpu" });
  let failed = 0;
  for (const fixture of ["hf/llama", "hf/clip", "hf/llava", "hf/blip2", "hf/lora", "hf/whisper_mel", "nf4"]) {
    const report = await lib.runParity(path.join(process.cwd(), "test/fixtures", fixture));
    console.log(lib.formatParityReport(report));
    if (!report.ok) failed++;
  }
  console.log(`device parity on ${engine.device}: ${failed} fixture(s) failed`);
  process.exit(failed ? 1 : 0);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
