/**
 * The op codes the native addon understands — their one definition. An op's code is its index in its
 * list. The addon's C++ enums (op_codes.h: `Binary`, `Unary`, `Reduce`) are generated from the literal
 * below when it builds (scripts/generate-op-codes.js, a build action in binding.gyp), so the two sides
 * cannot drift apart. Keep the literal in JSON syntax (the generator parses it); append new ops at the
 * end of a list.
 */
export const OP_NAMES = {
  "binary": ["Add", "Sub", "Multiply", "RealDiv", "Maximum", "Minimum", "SquaredDifference", "Pow", "GeluTanhGrad"],
  "unary": ["Exp", "Log", "Sqrt", "Rsqrt", "Tanh", "Sigmoid", "Relu", "Neg", "Abs", "Square", "GeluTanh", "Reciprocal"],
  "reduce": ["Sum", "Mean", "Max", "Min"]
} as const;

/** The families of coded ops: `binary` and `unary` ops, and the `reduce` kinds. */
export type OpFamily = keyof typeof OP_NAMES;
/** The op names of a family. */
export type OpName<Family extends OpFamily> = (typeof OP_NAMES)[Family][number];

/** The code of op `name` in `family`; throws, naming the op, when the family does not list it. */
export function opCode<Family extends OpFamily>(family: Family, name: OpName<Family>): number {
  const code = (OP_NAMES[family] as readonly string[]).indexOf(name);
  if (code < 0) throw new Error(`native op codes: no ${family} op "${name}" in src/engine/native/op_codes.ts (it lists ${OP_NAMES[family].join(", ")})`);
  return code;
}
