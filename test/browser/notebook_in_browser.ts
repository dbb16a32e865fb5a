/**
 * Opens an executed solution notebook in Debian's classic Jupyter Notebook
 * with headless Chromium, runs every cell through the lab kernel, and reports
 * what rendered: images, the audio player, plotly and tfjs-vis charts and the
 * progress display (non-blank pixels in their elements), JavaScript errors,
 * and screenshots saved to `artifacts/browser/`.
 *
 * Nothing leaves the machine: Jupyter listens on 127.0.0.1 only, and Chromium
 * starts with the flags that keep it off the network, in a fresh profile.
 * The notebook is copied to a temporary folder (autosave cannot touch the
 * repository); `data/` and `node_modules/` are linked next to it so its
 * relative paths and `import "mllm-labs"` resolve as in the repository.
 */
import { spawn, spawnSync, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** The Chromium binary, or undefined. */
export function findChromium(): string | undefined {
  for (const candidate of [
    process.env.CHROMIUM_PATH,
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
  ]) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Whether `jupyter notebook` (the classic Notebook) runs here. */
export function hasJupyterNotebook(): boolean {
  return spawnSync("jupyter", ["notebook", "--version"], { encoding: "utf8" }).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false>,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`browser test: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** What one kind of output looked like in the page. */
export interface ElementReport {
  /** Elements found. */
  count: number;
  /** Of those, how many have ≥ 200 pixels that differ from their own background. */
  drawn: number;
}

export interface BrowserReport {
  notebook: string;
  /** Code cells run, and those whose output is an error. */
  cellsRun: number;
  errorCells: number[];
  images: ElementReport;
  audio: ElementReport & { playable: number };
  plotly: ElementReport;
  tfvis: ElementReport;
  progress: ElementReport & { texts: string[] };
  /** Uncaught exceptions and console errors in the page once the cells run. */
  javascriptErrors: string[];
  /** The same while Jupyter's page loaded (its own, reported, not ours). */
  pageLoadErrors: string[];
  screenshots: string[];
  seconds: number;
}

/** Pixels that differ (by > 24 in a channel) from the element's most common color. */
async function inkPixels(png: Buffer): Promise<number> {
  const sharp = require("sharp");
  const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const counts = new Map<number, number>();
  for (let i = 0; i < data.length; i += 3) {
    const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const background = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const [r, g, b] = [background >> 16, (background >> 8) & 255, background & 255];
  let ink = 0;
  for (let i = 0; i < data.length; i += 3)
    if (Math.abs(data[i] - r) > 24 || Math.abs(data[i + 1] - g) > 24 || Math.abs(data[i + 2] - b) > 24) ink++;
  return ink;
}

/** Runs `notebook` (a path inside `root`) in the browser and reports. */
export async function runNotebookInBrowser(args: {
  root: string;
  notebook: string;
  artifacts: string;
  timeoutMs?: number;
  log?: (line: string) => void;
}): Promise<BrowserReport> {
  const started = Date.now();
  const log = args.log ?? (() => {});
  const chromium = findChromium();
  if (!chromium) throw new Error("browser test: Chromium not found (apt install chromium, or set CHROMIUM_PATH)");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mllm-browser-"));
  const relative = path.relative(args.root, path.resolve(args.root, args.notebook));
  let port: number;
  try {
    // The work folder is removed if setting it up fails (a missing notebook), as after the run below.
    fs.mkdirSync(path.join(work, path.dirname(relative)), { recursive: true });
    fs.copyFileSync(path.resolve(args.root, args.notebook), path.join(work, relative));
    for (const link of ["data", "node_modules"]) fs.symlinkSync(path.join(args.root, link), path.join(work, link));
    fs.mkdirSync(args.artifacts, { recursive: true });
    port = await freePort();
  } catch (error) {
    fs.rmSync(work, { recursive: true, force: true });
    throw error;
  }
  const env = {
    ...process.env,
    JUPYTER_PATH: path.join(args.root, ".jupyter"),
    JUPYTER_CONFIG_DIR: path.join(work, ".config"),
    JUPYTER_DATA_DIR: path.join(work, ".data"),
    JUPYTER_RUNTIME_DIR: path.join(work, ".runtime"),
    MLLM_BACKEND: process.env.MLLM_BACKEND ?? "native",
  };
  const jupyter: ChildProcess = spawn(
    "jupyter",
    [
      "notebook",
      "--no-browser",
      "--ip=127.0.0.1",
      `--port=${port}`,
      "--port-retries=0",
      `--notebook-dir=${work}`,
      "--NotebookApp.token=",
      "--NotebookApp.password=",
      "--allow-root",
    ],
    { env, cwd: work, stdio: ["ignore", "pipe", "pipe"] },
  );
  let jupyterLog = "";
  jupyter.stdout!.on("data", (d) => (jupyterLog += d));
  jupyter.stderr!.on("data", (d) => (jupyterLog += d));
  const puppeteer = require("puppeteer-core");
  let browser: any;
  try {
    await waitFor("Jupyter to listen", 60_000, async () => (await fetch(`http://127.0.0.1:${port}/api/status`)).ok);
    log(`jupyter notebook on 127.0.0.1:${port}`);
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${path.join(work, "chromium-profile")}`, "--window-size=1280,900"],
      defaultViewport: { width: 1280, height: 900 },
    });
    const page = await browser.newPage();
    // Errors while Jupyter's page loads are its own (e.g. Debian's Notebook probing for ipywidgets); errors once cells run are ours.
    const pageLoadErrors: string[] = [];
    const javascriptErrors: string[] = [];
    let running = false;
    const record = (text: string) => (running ? javascriptErrors : pageLoadErrors).push(text);
    page.on("pageerror", (error: Error) => record(`uncaught: ${error.message}`));
    page.on("console", (message: any) => {
      if (message.type() === "error") record(`console.error: ${message.text()} (${message.location()?.url ?? "?"})`);
    });
    page.on("requestfailed", (request: any) => {
      const initiator = request.initiator?.();
      const frame = initiator?.stack?.callFrames?.[0];
      record(
        `request failed: ${request.url()} (${request.failure()?.errorText ?? "?"}; started by ${initiator?.type ?? "?"} ${frame ? `${frame.functionName || "(anonymous)"} at ${frame.url}:${frame.lineNumber}:${frame.columnNumber}` : (initiator?.url ?? "")})`,
      );
    });
    // Only 127.0.0.1 may be reached.
    await page.setRequestInterception(true);
    page.on("request", (request: any) => {
      const url = new URL(request.url());
      if (url.protocol === "data:" || url.protocol === "blob:" || url.hostname === "127.0.0.1") request.continue();
      else {
        record(`blocked a request off the machine: ${request.url()}`);
        request.abort();
      }
    });
    await page.goto(`http://127.0.0.1:${port}/notebooks/${relative.split(path.sep).map(encodeURIComponent).join("/")}`, {
      waitUntil: "load",
    });
    await waitFor("the kernel to start", 60_000, () =>
      page.evaluate(() => {
        const J = (window as any).Jupyter;
        return !!(
          J &&
          J.notebook &&
          J.notebook.kernel &&
          J.notebook.kernel.is_connected() &&
          J.notebook.kernel_selector?.current_selection === "mllm-labs"
        );
      }),
    );
    // Let the page finish its own loading (fonts, MathJax, extensions) before the run starts.
    await page.evaluate(() => document.fonts.ready.then(() => true));
    // MathJax (the Notebook's) typesets the markdown and probes fonts with an about:blank @font-face: let it finish.
    await page.evaluate(
      () =>
        new Promise((resolve) => {
          const hub = (window as any).MathJax?.Hub;
          if (hub) hub.Queue(() => resolve(true));
          else resolve(true);
        }),
    );
    await page.waitForNetworkIdle({ idleTime: 1000, timeout: 30_000 }).catch(() => {});
    running = true;
    log("kernel connected; running all cells");
    await page.evaluate(() => {
      const J = (window as any).Jupyter;
      J.notebook.set_autosave_interval(0);
      J.notebook.clear_all_output();
      // Code cells only: markdown cells stay as rendered at load.
      const indices = J.notebook
        .get_cells()
        .map((c: any, k: number) => (c.cell_type === "code" ? k : -1))
        .filter((k: number) => k >= 0);
      J.notebook.execute_cells(indices);
    });
    const codeCells: number = await page.evaluate(
      () => (window as any).Jupyter.notebook.get_cells().filter((c: any) => c.cell_type === "code").length,
    );
    await waitFor(
      "every cell to run",
      args.timeoutMs ?? 300_000,
      () =>
        page.evaluate(() => {
          const J = (window as any).Jupyter;
          const cells = J.notebook.get_cells().filter((c: any) => c.cell_type === "code");
          const done = cells.every(
            (c: any) =>
              typeof c.input_prompt_number === "number" || c.output_area.outputs.some((o: any) => o.output_type === "error"),
          );
          return done && J.notebook.kernel_busy === false && !document.querySelector(".kernel_busy_icon");
        }),
      500,
    );
    // Let front-end libraries finish drawing (plotly and tfjs-vis draw asynchronously).
    await new Promise((r) => setTimeout(r, 3000));
    const errorCells: number[] = await page.evaluate(() =>
      (window as any).Jupyter.notebook
        .get_cells()
        .filter((c: any) => c.cell_type === "code")
        .map((c: any, k: number) => (c.output_area.outputs.some((o: any) => o.output_type === "error") ? k + 1 : 0))
        .filter((k: number) => k > 0),
    );
    const screenshots: string[] = [];
    const full = path.join(args.artifacts, "notebook.png");
    await page.screenshot({ path: full, fullPage: true });
    screenshots.push(full);
    async function inspect(kind: string, selector: string): Promise<ElementReport> {
      const handles = await page.$$(selector);
      let drawn = 0;
      for (let k = 0; k < handles.length; k++) {
        await handles[k].scrollIntoView();
        const box = await handles[k].boundingBox();
        if (!box || box.width < 4 || box.height < 4) continue;
        const shot: Buffer = Buffer.from(await handles[k].screenshot());
        if ((await inkPixels(shot)) >= 200) drawn++;
        const file = path.join(args.artifacts, `${kind}-${k}.png`);
        fs.writeFileSync(file, shot);
        screenshots.push(file);
      }
      return { count: handles.length, drawn };
    }
    const images = await inspect("image", ".output_png img");
    const plotly = await inspect("plotly", ".mllm-plot.js-plotly-plot"); // Plotly.newPlot marks the element it drew into
    const tfvis = await inspect("tfvis", ".mllm-tfvis:has(canvas)"); // drawn by tfjs-vis (vega, on a canvas), not the static SVG
    const progress = {
      ...(await inspect("progress", ".mllm-progress")),
      texts: await page.$$eval(".mllm-progress", (els: Element[]) => els.map((e) => (e.textContent ?? "").slice(0, 120))),
    };
    const audioElements = await inspect("audio", ".output_html figure:has(audio)");
    const playable: number = await page.evaluate(async () => {
      const players = [...document.querySelectorAll("audio")] as HTMLAudioElement[];
      const ready = await Promise.all(
        players.map(
          (a) =>
            new Promise<boolean>((resolve) => {
              if (a.readyState >= 1) return resolve(a.duration > 0);
              a.addEventListener("loadedmetadata", () => resolve(a.duration > 0), { once: true });
              a.addEventListener("error", () => resolve(false), { once: true });
              a.load();
              setTimeout(() => resolve(false), 10_000);
            }),
        ),
      );
      return ready.filter(Boolean).length;
    });
    return {
      notebook: relative,
      cellsRun: codeCells,
      errorCells,
      images,
      audio: { ...audioElements, playable },
      plotly,
      tfvis,
      progress,
      javascriptErrors,
      pageLoadErrors,
      screenshots,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- jupyter log (last 3000 characters) ---\n${jupyterLog.slice(-3000)}`);
  } finally {
    await browser?.close().catch(() => {});
    jupyter.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    if (jupyter.exitCode === null) jupyter.kill("SIGKILL");
    fs.rmSync(work, { recursive: true, force: true });
  }
}
