/**
 * Training progress: one live display, updated in place, with step, loss,
 * rate, ETA and a small loss curve; when training ends it becomes a single
 * clean final output (what the saved notebook keeps). Without a kernel (a
 * script in a terminal) the same progress is a bar on stderr.
 *
 *   const progress = trainingProgress({ total: steps, title: "sorting GPT" });
 *   for (let step = 1; step <= steps; step++) { …; progress.update(step, { loss }); }
 *   progress.done();
 */
import { display, escapeHtml, Rich } from "./rich";
import { hostHook } from "../src/kernel/host";
import { chartSvg, downsampleIndices, tick } from "./chart";
import { elementId } from "./frontend";

/** Options for {@link trainingProgress}. */
export interface ProgressArgs {
  /** Steps in all. Required. */
  total: number;
  /** Shown first. Default "training". */
  title?: string;
  /** Least time between two refreshes of the display, ms. Default 250. */
  intervalMs?: number;
  /** Where the terminal bar goes when there is no kernel. Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** The clock (tests). Default Date.now. */
  now?: () => number;
}

/** Numbers reported with a step (e.g. `{ loss }`). The first is the curve's. */
export type StepMetrics = Record<string, number>;

function clock(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

export class TrainingProgress {
  private readonly started: number;
  private lastDrawn = -Infinity;
  private step = 0;
  private metrics: StepMetrics = {};
  /** The first metric's value at every update (the curve). */
  readonly history: { step: number; value: number }[] = [];
  private readonly displayId = elementId("progress");
  private shown = false;
  private finished = false;
  private lastTerminalTenth = -1;

  constructor(private readonly args: ProgressArgs) {
    if (!(Number.isInteger(args?.total) && args.total > 0))
      throw new Error(`trainingProgress: total must be a positive integer, got ${args?.total}`);
    this.started = this.now();
  }

  private now(): number {
    return (this.args.now ?? Date.now)();
  }

  /** Records step `step` (1-based) and its metrics; refreshes the display at most every intervalMs. */
  update(step: number, metrics: StepMetrics = {}): void {
    if (this.finished) throw new Error("trainingProgress: update after done()");
    if (!(Number.isInteger(step) && step >= 0 && step <= this.args.total))
      throw new Error(`trainingProgress: step must be an integer in 0…${this.args.total}, got ${step}`);
    for (const [name, value] of Object.entries(metrics))
      if (typeof value !== "number")
        throw new Error(
          `trainingProgress: metric "${name}" must be a number (read tensors with await t.data()), got ${typeof value}`,
        );
    this.step = step;
    this.metrics = metrics;
    const first = Object.values(metrics)[0];
    if (first !== undefined) this.history.push({ step, value: first });
    if (this.now() - this.lastDrawn >= (this.args.intervalMs ?? 250) || step === this.args.total) this.draw(false);
  }

  /** Ends the display: the final state, with the whole curve, replaces the live one. */
  done(): Rich {
    if (this.finished) throw new Error("trainingProgress: done() called twice");
    this.finished = true;
    return this.draw(true);
  }

  /** Elapsed time, rate (steps/s), ETA text and the metrics as "name value" pieces. */
  private status(): { elapsed: number; rate: number; eta: string; metrics: string[] } {
    const elapsed = this.now() - this.started;
    const rate = this.step > 0 && elapsed > 0 ? (this.step / elapsed) * 1000 : 0;
    const eta = rate > 0 ? clock(((this.args.total - this.step) / rate) * 1000) : "?";
    return { elapsed, rate, eta, metrics: Object.entries(this.metrics).map(([name, value]) => `${name} ${tick(value)}`) };
  }

  /** What the display shows now. */
  render(final = false): Rich {
    const { total, title = "training" } = this.args;
    const { elapsed, rate, eta, metrics } = this.status();
    const metricText = metrics.join(" · ");
    const timing = final
      ? `${(elapsed / 1000).toFixed(1)} s · ${rate.toFixed(1)} steps/s`
      : `${rate.toFixed(1)} steps/s · ETA ${eta}`;
    const head = `${title}: step ${this.step}/${total}${metricText ? ` · ${metricText}` : ""} · ${timing}${final && this.step < total ? " (stopped early)" : ""}`;
    const fraction = this.step / total;
    let curve = "";
    if (this.history.length >= 2) {
      const kept = downsampleIndices(
        this.history.length,
        this.history.map((h) => h.value),
        400,
      );
      curve = chartSvg({
        traces: [
          {
            name: Object.keys(this.metrics)[0] ?? "value",
            kind: "line",
            x: kept.map((i) => this.history[i].step),
            y: kept.map((i) => this.history[i].value),
          },
        ],
        xLabel: "step",
        yLabel: Object.keys(this.metrics)[0],
        width: 360,
        height: 150,
      });
    }
    const markup =
      `<div class="mllm-progress" style="font-family:sans-serif;font-size:12px">` +
      `<div>${escapeHtml(head)}</div>` +
      `<div style="width:360px;height:8px;background:#e5e5e5;border-radius:4px;margin:4px 0"><div style="width:${(fraction * 100).toFixed(1)}%;height:8px;background:${final ? "#2ca02c" : "#1f77b4"};border-radius:4px"></div></div>` +
      curve +
      `</div>`;
    return new Rich({ "text/plain": head, "text/html": markup });
  }

  private draw(final: boolean): Rich {
    this.lastDrawn = this.now();
    const rich = this.render(final);
    if (hostHook.current()) {
      display(rich, { displayId: this.displayId, update: this.shown });
      this.shown = true;
    } else this.terminal(final);
    return rich;
  }

  /** The bar on a terminal: redrawn in place on a TTY, a line per tenth otherwise. */
  private terminal(final: boolean): void {
    const stream = this.args.stream ?? process.stderr;
    const { total, title = "training" } = this.args;
    const width = 24;
    const filled = Math.round((this.step / total) * width);
    const { elapsed, rate, eta, metrics } = this.status();
    const tail = final ? ` ${(elapsed / 1000).toFixed(1)} s` : ` ETA ${eta}`;
    const line = `${title} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${this.step}/${total}${metrics.map((m) => ` ${m}`).join("")} ${rate.toFixed(1)} steps/s${tail}`;
    if (stream.isTTY) stream.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
    else {
      const tenth = Math.floor((this.step / total) * 10);
      if (final || tenth > this.lastTerminalTenth) stream.write(line + "\n");
      this.lastTerminalTenth = tenth;
    }
  }
}

/** Starts a progress display for `total` steps. */
export function trainingProgress(args: ProgressArgs): TrainingProgress {
  return new TrainingProgress(args);
}
