/**
 * Once per `vitest run`: a file where tests record what they skipped for a
 * missing system package (test/helpers/system.ts), and, at the end, a summary
 * of those skips, so that a passing run on a bare machine says what it did
 * not test. With MLLM_REQUIRE_SYSTEM=1 nothing is skipped (CI).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SKIP_LOG_VARIABLE } from "./helpers/system";

export default function setup(): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mllm-labs-skips-"));
  const log = path.join(dir, "skipped.txt");
  fs.writeFileSync(log, "");
  process.env[SKIP_LOG_VARIABLE] = log;
  return () => {
    const lines = [...new Set(fs.readFileSync(log, "utf8").split("\n").filter(Boolean))];
    fs.rmSync(dir, { recursive: true, force: true });
    if (lines.length === 0) return;
    const text = [
      "",
      `Skipped for missing system packages (${lines.length}); MLLM_REQUIRE_SYSTEM=1 makes these failures (.ci/run sets it):`,
      ...lines.map((line) => `  - ${line}`),
      "",
    ].join("\n");
    process.stdout.write(text + "\n");
  };
}
