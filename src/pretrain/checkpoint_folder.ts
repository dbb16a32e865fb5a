/**
 * Writing a checkpoint folder without ever leaving a half-written one or
 * replacing a user's folder unasked: `pretrain` refuses an existing folder
 * unless `--force`, writes the new checkpoint into a temporary folder next to
 * it, and renames that into place whole (the old folder, when replaced, is
 * moved aside first and removed after).
 */
import * as fs from "fs";
import * as path from "path";

/** Throws when `directory` exists and holds anything, unless `force`; says how to replace it. */
export function refuseExistingCheckpoint(directory: string, force = false): void {
  if (force || !fs.existsSync(directory)) return;
  if (!fs.statSync(directory).isDirectory()) throw new Error(`pretrain: --out ${directory} is a file, not a checkpoint folder`);
  const entries = fs.readdirSync(directory);
  if (entries.length === 0) return;
  throw new Error(
    `pretrain: ${directory} already exists (${entries.slice(0, 4).join(", ")}${entries.length > 4 ? ", ..." : ""}); ` +
      `pass --force to replace it, or --out to write the new checkpoint elsewhere`,
  );
}

/**
 * Calls `write` with a fresh temporary folder next to `directory`, then puts
 * that folder in its place; on any error the temporary folder is removed and
 * `directory` is left as it was.
 */
export async function writeFolderAtomically(directory: string, write: (temporary: string) => Promise<void>): Promise<void> {
  const target = path.resolve(directory);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}.tmp-`));
  try {
    await write(temporary);
    if (fs.existsSync(target)) {
      const aside = `${temporary}.old`;
      fs.renameSync(target, aside);
      try {
        fs.renameSync(temporary, target);
      } catch (error) {
        fs.renameSync(aside, target);
        throw error;
      }
      fs.rmSync(aside, { recursive: true, force: true });
    } else {
      fs.renameSync(temporary, target);
    }
  } catch (error) {
    fs.rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
}
