/**
 * `node_modules/mllm-labs` → the project: how notebooks import the built
 * library by package name (tslab compiles only `.ts` below a notebook's own
 * folder). `npm install` makes the link; npm removes it again when a package
 * is added later (`npm install <name>` prunes what it did not install), so the
 * lab kernel's preload calls {@link ensurePackageLink} too.
 */
import * as fs from "fs";
import * as path from "path";
import { projectRoot } from "./project_root";

/** Creates or repairs the link; returns what it did. Throws if a real folder is in the way. */
export function ensurePackageLink(root = projectRoot()): "present" | "created" {
  const link = path.join(root, "node_modules", "mllm-labs");
  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(link);
  } catch {
    existing = undefined;
  }
  if (existing?.isSymbolicLink() && path.resolve(path.dirname(link), fs.readlinkSync(link)) === root) return "present";
  if (existing && !existing.isSymbolicLink())
    throw new Error(`${link} exists and is not a link to the project; remove it and run npm install again`);
  fs.mkdirSync(path.dirname(link), { recursive: true });
  if (existing) fs.unlinkSync(link);
  fs.symlinkSync("..", link, "dir");
  return "created";
}
