/**
 * The tslab internals the lab kernel reaches into (its `dist/` modules, which tslab's public entry does
 * not export), each behind one function here, so that an upgrade breaks in one place, loudly
 * (test/internals.test.ts is the canary). Pinned: tslab at exactly {@link TSLAB_INTERNALS_VERSION} in package.json.
 *
 * Reference: tslab 1.0.22 `dist/converter.js` (`createConverter`, `isCompleteCode`), `dist/executor.js`
 * (`createExecutor(rootDir, convs, console)`), `dist/inspect.js` (`printQuickInfo`) and `dist/jupyter.js`
 * (`lastWriteDisplayData`, the hook tslab's public `display` writes through); its own `dist/main.js`
 * builds a kernel from the same modules.
 */

/** The tslab version whose internals this file was written against. */
export const TSLAB_INTERNALS_VERSION = "1.0.22";

function installedVersion(): string {
  try {
    return require("tslab/package.json").version;
  } catch {
    return "not installed";
  }
}

function changed(what: string, found: unknown): Error {
  return new Error(
    `tslab internals changed: ${what} (found ${typeof found}). src/kernel/tslab_internals.ts was written for tslab ${TSLAB_INTERNALS_VERSION} ` +
      `(installed: ${installedVersion()}); update the adapter and its canary test, test/internals.test.ts`,
  );
}

/** `require("tslab/dist/<name>")`, checking that it exports `exported` with the expected type. */
function internal<T>(name: string, exported: readonly string[], type: "function" | "hook" = "function"): T {
  const module = require(`tslab/dist/${name}`);
  for (const key of exported) {
    const value = module[key];
    const ok =
      type === "function" ? typeof value === "function" : key in module && (value === null || typeof value === "function");
    if (!ok) throw changed(`tslab/dist/${name} has no ${type === "function" ? "function" : "hook"} \`${key}\``, value);
  }
  return module as T;
}

/** tslab's TypeScript-to-JavaScript converter module. */
export function tslabConverter(): {
  createConverter(options: { isJS: boolean; isBrowser: boolean }): any;
  isCompleteCode(code: string): { completed: boolean; indent?: string };
} {
  return internal("converter", ["createConverter", "isCompleteCode"]);
}

/** tslab's executor module: `createExecutor(rootDir, converters, console)`. */
export function tslabExecutor(): { createExecutor(rootDir: string, converters: unknown, console: unknown): any } {
  return internal("executor", ["createExecutor"]);
}

/** tslab's quick-info formatter. */
export function tslabInspect(): { printQuickInfo(info: unknown): string } {
  return internal("inspect", ["printQuickInfo"]);
}

/** What tslab's public `display` hands to its hook. */
export interface TslabDisplayContent {
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  transient?: { display_id?: string };
}

/**
 * Routes tslab's public `display` API (`import * as tslab from "tslab"`) to `write`, through the
 * module-level hook `lastWriteDisplayData` of `tslab/dist/jupyter`. Returns false when tslab is not
 * installed next to this copy of the library; throws when it is but the hook has changed.
 */
export function wireTslabDisplay(write: (content: TslabDisplayContent, update: boolean) => void): boolean {
  try {
    require.resolve("tslab/dist/jupyter");
  } catch {
    return false;
  }
  const jupyter = internal<{ lastWriteDisplayData: unknown }>("jupyter", ["lastWriteDisplayData"], "hook");
  jupyter.lastWriteDisplayData = write;
  return true;
}
