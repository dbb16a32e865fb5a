/**
 * The op codes the native addon understands, read from their one definition,
 * `op_codes.json` (an op's code is its index in its list); the addon's C++
 * enums are generated from the same file when it builds
 * (scripts/generate-op-codes.js, a build action in binding.gyp).
 */
import definition from "./op_codes.json";

/** The families of coded ops: `binary` and `unary` ops, and the `reduce` kinds (Sum, Mean, Max, Min). */
export type OpFamily = "binary" | "unary" | "reduce";

const tables: Record<OpFamily, ReadonlyMap<string, number>> = {
  binary: new Map(definition.binary.map((name, code) => [name, code])),
  unary: new Map(definition.unary.map((name, code) => [name, code])),
  reduce: new Map(definition.reduce.map((name, code) => [name, code])),
};

/** The code of op `name` in `family`; throws, naming the op and the file, when op_codes.json does not list it. */
export function opCode(family: OpFamily, name: string): number {
  const code = tables[family].get(name);
  if (code === undefined) {
    throw new Error(`native op codes: no ${family} op "${name}" in src/engine/native/op_codes.json (it lists ${[...tables[family].keys()].join(", ")})`);
  }
  return code;
}

/** The names of `family`, in code order. */
export function opNames(family: OpFamily): readonly string[] {
  return [...tables[family].keys()];
}
