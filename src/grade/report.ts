/**
 * The grader's outputs: `gradebook.csv`, `gradebook.json`, and one HTML
 * feedback file per student. Deterministic: no timestamps or durations, rows
 * sorted by student, text outputs passed through the checker's sanitizers
 * (times, sizes, absolute paths), so re-grading the same inputs gives the same
 * bytes.
 */
import { sanitize } from "../checker/sanitize";
import type { Output } from "../runner/notebook";
import type { CellRun } from "./execute";
import type { Restored } from "./restore";

/** One exercise's result for one student. */
export interface ExerciseGrade {
  name: string;
  /** The check cell's id. */
  gradeId: string;
  points: number;
  max: number;
  /** "passed", or why not (the check's error, a timeout, ...). */
  reason: string;
}

/** One student's row. */
export interface StudentGrade {
  student: string;
  lab: string;
  /** The submission file, relative to where it was given. */
  file: string;
  exercises: ExerciseGrade[];
  total: number;
  max: number;
  /** "graded", "graded (tampering undone)", "graded (incomplete: …)", or "error: …" for a file that could not be graded. */
  status: string;
  tampering: string[];
  notes: string[];
  /** Code the grader wants a human to look at (patching, processes, files). */
  review: string[];
  /** Restarts and limits hit. */
  events: string[];
}

// eslint-disable-next-line no-control-regex -- terminal colour codes start with ESC
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** Text for a student: colour codes out, the grader's host paths hidden. */
export function hidePaths(text: string, paths: string[]): string {
  let out = text.replace(ANSI, "");
  for (const p of paths) out = out.split(p).join("<lab>");
  return out;
}

/** A cell's output for the feedback: paths hidden, then what differs between honest runs (times, sizes, absolute paths) sanitized with all of the checker's sanitizers (the feedback is read, not compared, so times and sizes are hidden in every cell). */
export function clean(text: string, paths: string[]): string {
  return sanitize(hidePaths(text, paths));
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) || /^[=+\-@\t]/.test(text)
    ? `"${(/^[=+\-@\t]/.test(text) ? "'" : "") + text.replace(/"/g, '""')}"`
    : text;
}

/** gradebook.csv: student, lab, each exercise's points, total, max, status. */
export function gradebookCsv(rows: StudentGrade[], exerciseColumns: { name: string; gradeId: string }[]): string {
  const header = ["student", "lab", ...exerciseColumns.map((e) => `${e.name} (${e.gradeId})`), "total", "max", "status"];
  const lines = [header.map(csvField).join(",")];
  for (const row of rows) {
    const points = exerciseColumns.map((column) => row.exercises.find((e) => e.gradeId === column.gradeId)?.points ?? 0);
    lines.push([row.student, row.lab, ...points, row.total, row.max, row.status].map(csvField).join(","));
  }
  return lines.join("\n") + "\n";
}

/** gradebook.json: the same rows with the reasons. */
export function gradebookJson(lab: string, rows: StudentGrade[]): string {
  return JSON.stringify({ lab, students: rows }, null, 2) + "\n";
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function textOf(value: unknown): string {
  return Array.isArray(value) ? value.join("") : typeof value === "string" ? value : JSON.stringify(value);
}

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

/** An output as safe HTML: text escaped, images as data URLs (SVG through <img>, where its scripts do not run), nothing else of the student's HTML. */
function renderOutput(output: Output, hidePaths: string[]): string {
  if (output.output_type === "stream") {
    return `<pre class="${output.name}">${escapeHtml(clean(textOf(output.text), hidePaths))}</pre>`;
  }
  if (output.output_type === "error") {
    const traceback = output.traceback.map((line) => clean(line, hidePaths)).join("\n");
    return `<pre class="error">${escapeHtml(traceback || `${output.ename}: ${clean(output.evalue, hidePaths)}`)}</pre>`;
  }
  const data = output.data as Record<string, unknown>;
  for (const mime of ["image/png", "image/jpeg", "image/gif"]) {
    const value = textOf(data[mime] ?? "");
    if (value && BASE64.test(value)) return `<img alt="output" src="data:${mime};base64,${value.replace(/\s/g, "")}">`;
  }
  if (typeof data["image/svg+xml"] !== "undefined") {
    const svg = Buffer.from(textOf(data["image/svg+xml"]), "utf8").toString("base64");
    return `<img alt="figure" src="data:image/svg+xml;base64,${svg}">`;
  }
  if (typeof data["text/plain"] !== "undefined") return `<pre>${escapeHtml(clean(textOf(data["text/plain"]), hidePaths))}</pre>`;
  return `<pre class="note">[${escapeHtml(Object.keys(data).sort().join(", "))} output: open the notebook in Jupyter to see it]</pre>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.pass{color:#1a7f37}.fail{color:#cf222e}pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
pre.error{background:#fff0f0}pre.stderr{background:#fff8e6}.cell{border-left:4px solid #ddd;margin:1rem 0;padding-left:.6rem}
.cell.answer{border-color:#0969da}.cell.grade{border-color:#8250df}.label{font-size:.8rem;color:#666}img{max-width:100%}`;

/** The feedback page of one student. */
export function feedbackHtml(
  grade: StudentGrade,
  restored: Restored | undefined,
  runs: Map<number, CellRun> | undefined,
  paths: string[],
): string {
  const parts: string[] = [];
  parts.push(
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`${grade.lab} — ${grade.student}`)}</title><style>${STYLE}</style></head><body>`,
  );
  parts.push(`<h1>${escapeHtml(grade.lab)}: feedback for ${escapeHtml(grade.student)}</h1>`);
  parts.push(`<p><strong>Score: ${grade.total} / ${grade.max}</strong> — ${escapeHtml(grade.status)}</p>`);
  if (grade.exercises.length > 0) {
    parts.push("<table><tr><th>exercise</th><th>points</th><th>result</th></tr>");
    for (const e of grade.exercises) {
      const ok = e.points === e.max;
      parts.push(
        `<tr><td>${escapeHtml(e.name)}</td><td>${e.points} / ${e.max}</td><td class="${ok ? "pass" : "fail"}">${escapeHtml(hidePaths(e.reason, paths))}</td></tr>`,
      );
    }
    parts.push("</table>");
  }
  for (const [title, lines] of [
    ["What the grader undid", grade.tampering],
    ["Notes", [...grade.notes, ...grade.events]],
  ] as const) {
    if (lines.length === 0) continue;
    parts.push(`<h2>${title}</h2><ul>${lines.map((l) => `<li>${escapeHtml(hidePaths(l, paths))}</li>`).join("")}</ul>`);
  }
  if (restored && runs) {
    parts.push("<h2>Your notebook, as graded</h2>");
    restored.cells.forEach((cell, index) => {
      if (cell.role === "markdown") return;
      const run = runs.get(index);
      const label =
        cell.role === "solution"
          ? `your answer (${restored.exercises[cell.exercise!].name})`
          : cell.role === "grade"
            ? `check of ${restored.exercises[cell.exercise!].name}`
            : cell.role === "added"
              ? "a cell you added"
              : "lab code";
      const state = !run
        ? "not run"
        : run.status === "ok"
          ? ""
          : ` — ${run.status}${run.message ? `: ${hidePaths(run.message, paths)}` : ""}`;
      parts.push(
        `<div class="cell ${cell.role === "solution" ? "answer" : cell.role}"><div class="label">${escapeHtml(`[${cell.id}] ${label}${state}`)}</div>`,
      );
      parts.push(`<pre><code>${escapeHtml(cell.source)}</code></pre>`);
      for (const output of run?.outputs ?? []) parts.push(renderOutput(output, paths));
      parts.push("</div>");
    });
  }
  parts.push("</body></html>\n");
  return parts.join("\n");
}
