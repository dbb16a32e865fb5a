/**
 * The lab preload: what every lab session has ready before its first cell.
 * - `node_modules/mllm-labs` linked to the project, so cells can import the library;
 * - the tensor engine started (silently; a lab's own `await initEngine()` prints the one-line report);
 * - the display helpers of `kernel-extensions/` wired to the kernel (see {@link hostHook}).
 * Failures become notes on the first cell's stderr, never a dead kernel.
 */
export async function preload(notes: string[]): Promise<void> {
  process.env.MLLM_LABS_KERNEL = "1";
  try {
    const { ensurePackageLink } = await import("../util/package_link");
    if (ensurePackageLink() === "created")
      notes.push("[mllm-labs] restored node_modules/mllm-labs (npm removes it when packages are added)");
  } catch (error) {
    notes.push(`[mllm-labs] notebooks cannot import "mllm-labs": ${(error as Error).message}`);
  }
  try {
    const { initEngine } = await import("../engine/init");
    await initEngine({ verbose: false });
  } catch (error) {
    notes.push(`[mllm-labs] the engine did not start in the preload: ${(error as Error).message}`);
  }
}
