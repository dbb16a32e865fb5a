/**
 * Browser libraries in notebook outputs, with no network: plotly.js and
 * tfjs-vis are embedded (inline `<script>`) in the first output of a kernel
 * session that needs them, and later outputs use the page's copy.
 *
 * An interactive output is HTML: a `<div>` holding the static SVG, and a
 * script that, once the library is on the page, replaces the SVG with the
 * live chart. Where scripts do not run (an untrusted notebook, GitHub, the
 * checker) the static picture stays. The library is wrapped so that it
 * defines its global (`window.Plotly`, `window.tfvis`) even where require.js
 * is loaded (the classic Notebook), which would otherwise capture it.
 */
import * as fs from "fs";
import { Rich, type MimeData } from "./rich";

/** The libraries a front end may need, and the global each defines. */
export const FRONTEND_LIBRARIES = {
  plotly: { module: "plotly.js-cartesian-dist-min/plotly-cartesian.min.js", global: "Plotly" },
  tfvis: { module: "@tensorflow/tfjs-vis/dist/tfjs-vis.umd.min.js", global: "tfvis" },
} as const;
export type FrontendLibrary = keyof typeof FRONTEND_LIBRARIES;

const STATE = Symbol.for("mllm-labs.display.frontend");
interface FrontendState {
  /** Libraries already sent to this session's front end. */
  embedded: Set<string>;
  /** Counter for element ids (deterministic within a session). */
  nextId: number;
}
function state(): FrontendState {
  const g = globalThis as Record<symbol, FrontendState | undefined>;
  return (g[STATE] ??= { embedded: new Set(), nextId: 0 });
}

/** Forgets what was embedded (a new notebook, or tests). */
export function resetFrontend(): void {
  (globalThis as Record<symbol, unknown>)[STATE] = undefined;
}

/** A fresh element id, `mllm-<kind>-<n>`. */
export function elementId(kind: string): string {
  return `mllm-${kind}-${state().nextId++}`;
}

const sources = new Map<string, string>();
/** The library's source as a `<script>` (read once; `</script` inside it escaped). */
export function libraryScript(name: FrontendLibrary): string {
  const library = FRONTEND_LIBRARIES[name];
  if (!sources.has(name)) {
    let path: string;
    try {
      path = require.resolve(library.module);
    } catch {
      throw new Error(`display: the front-end library "${library.module}" is not installed (run npm install)`);
    }
    const code = fs.readFileSync(path, "utf8").replace(/<\/script/gi, "<\\/script");
    // Shadow AMD and CommonJS so the bundle sets its window global even under require.js.
    sources.set(
      name,
      `<script type="text/javascript" data-mllm-library="${name}">(function (define, module, exports) {\n${code}\n}).call(window);</script>`,
    );
  }
  return sources.get(name)!;
}

/** JSON safe inside a `<script>` element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * A script that runs `body` (a function of the element and the library's global)
 * once the library is on the page, polling for up to 20 s.
 */
export function whenLoaded(name: FrontendLibrary, id: string, body: string): string {
  const global = FRONTEND_LIBRARIES[name].global;
  return (
    `<script type="text/javascript">(function () {` +
    `var run = function (element, lib) { ${body} };` +
    `var tries = 0; var go = function () { var element = document.getElementById(${JSON.stringify(id)}); var lib = window[${JSON.stringify(global)}];` +
    ` if (element && lib) { try { run(element, lib); } catch (error) { console.error("mllm-labs display:", error); } return; }` +
    ` if (++tries < 200) setTimeout(go, 100); };` +
    ` go(); })();</script>`
  );
}

/**
 * A rich output that needs a front-end library: the library's `<script>` is put
 * in front of its HTML when it is shown, if this session has not sent it yet.
 */
export class FrontendRich extends Rich {
  constructor(
    data: MimeData,
    metadata: Record<string, unknown>,
    /** The library the HTML's script needs. */
    readonly library: FrontendLibrary,
  ) {
    super(data, metadata);
  }

  override toMimeBundle(): { data: MimeData; metadata: Record<string, unknown> } {
    const embedded = state().embedded;
    if (embedded.has(this.library)) return { data: this.data, metadata: this.metadata };
    embedded.add(this.library);
    return {
      data: { ...this.data, "text/html": libraryScript(this.library) + String(this.data["text/html"]) },
      metadata: this.metadata,
    };
  }
}
