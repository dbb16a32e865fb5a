/**
 * Reverse-mode gradients that free memory as PyTorch's autograd does: tfjs's own walk
 * (`engine.gradients`) keeps the gradient of every intermediate tensor, every input gradient and
 * every saved activation until the whole backward pass ends; this walk frees each of them as soon as
 * it has been consumed. The arithmetic is tfjs's, op for op and in the same order (the same tape, the
 * same gradient functions, the same accumulation `add(previous, dx)`), so the gradients are
 * bit-identical to `tf.variableGrads`; only the lifetimes differ:
 *
 *  - a tensor's gradient is complete when the walk reaches the node that produced the tensor (the tape
 *    is in execution order), and freed right after that node's input gradients are computed;
 *  - an input gradient that is added to an earlier one is freed after the addition;
 *  - a node's saved tensors (the activations its gradient reads) are freed after its gradient ran;
 *    nodes off the path from the variables to the value are freed before the walk starts.
 *
 * Reference: tfjs-core 4.22 `engine.ts` (`gradients`), `tape.ts` (`getFilteredNodesXToY`,
 * `backpropagateGradients`); PyTorch `torch/csrc/autograd/engine.cpp` (buffers released as consumed).
 */
import * as tf from "@tensorflow/tfjs";
import { gradientDepth, recordTape, releaseTape, type TapeNode } from "./tfjs_internals";

/** The value of `f` and its gradient with respect to each of `xs` (undefined where `f` does not depend on it). */
export interface ValueAndGradients<T extends tf.Tensor> {
  readonly value: T;
  readonly grads: (tf.Tensor | undefined)[];
}

/**
 * The nodes on a path from `xs` to `y`, in tape order, each with its inputs pruned to those that depend
 * on `xs` (tfjs's `getFilteredNodesXToY`, same semantics).
 */
function nodesFromXsToY(tape: TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromXs = new Set<number>(xs.map((x) => x.id));
  const nodesFromXs = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromXs.has(input.id))) {
      for (const output of node.outputs) fromXs.add(output.id);
      nodesFromXs.add(node.id);
    }
  }
  const leadToY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((output) => leadToY.has(output.id))) {
      for (const input of Object.values(node.inputs)) leadToY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromXs.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, input] of Object.entries(node.inputs)) if (fromXs.has(input.id)) inputs[name] = input;
    filtered.push({ ...node, inputs });
  }
  return filtered;
}

/**
 * Computes `f()` and its gradients with respect to `xs`, freeing each intermediate gradient and saved
 * activation once consumed. `f` must return a scalar. Inside another gradient computation (higher-order
 * gradients) it defers to tfjs's `engine.gradients`, which must keep the tape. The caller disposes the
 * value and the gradients.
 */
export function valueAndGradients<T extends tf.Tensor>(f: () => T, xs: readonly tf.Tensor[]): ValueAndGradients<T> {
  if (xs.length === 0) throw new Error("valueAndGradients: no tensors to differentiate with respect to (xs is empty)");
  if (gradientDepth() > 0) {
    const { value, grads } = (
      tf.engine() as unknown as { gradients(f: () => T, xs: tf.Tensor[], dy: null, allow: boolean): ValueAndGradients<T> }
    ).gradients(f, [...xs], null, true);
    return { value, grads: grads.map((g) => g ?? undefined) };
  }
  const { value, tape } = recordTape(f);
  if (!(value instanceof tf.Tensor)) throw new Error(`valueAndGradients: f() must return a tensor, got ${typeof value}`);
  if (value.rank !== 0) throw new Error(`valueAndGradients: f() must return a scalar, got shape [${value.shape}]`);
  try {
    const grads = tf.tidy(() => walk(tape, xs, value));
    return { value, grads };
  } finally {
    // Whatever the walk did not reach (nodes off the path, or all of them after an error) is freed here.
    for (const node of tape) freeSaved(node);
    releaseTape();
  }
}

/** Frees a node's saved tensors (not the shape stand-ins {@link recordTape} leaves, nor a tensor held as a gradient). */
function freeSaved(node: TapeNode, held?: ReadonlyMap<tf.Tensor, number>): void {
  for (const saved of node.saved ?? []) if (saved instanceof tf.Tensor && !held?.has(saved)) saved.dispose();
}

/** The backward walk over the tape; runs inside a tidy (which frees what an error leaves behind). */
function walk(tape: TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): (tf.Tensor | undefined)[] {
  const path = nodesFromXsToY(tape, xs, y);
  const onPath = new Set(path.map((node) => node.id));
  for (const node of tape) if (!onPath.has(node.id)) freeSaved(node);

  const requested = new Set(xs.map((x) => x.id));
  /** Tensor id → its gradient so far. */
  const accumulated = new Map<number, tf.Tensor>();
  /** How many entries of `accumulated` hold each tensor (a gradient function may hand a tensor on unchanged). */
  const held = new Map<tf.Tensor, number>();
  const hold = (id: number, gradient: tf.Tensor) => {
    accumulated.set(id, gradient);
    held.set(gradient, (held.get(gradient) ?? 0) + 1);
  };
  const unhold = (id: number) => {
    const gradient = accumulated.get(id)!;
    accumulated.delete(id);
    const count = held.get(gradient)! - 1;
    if (count === 0) held.delete(gradient);
    else held.set(gradient, count);
  };
  const free = (tensor: tf.Tensor) => {
    if (!held.has(tensor)) tensor.dispose();
  };
  hold(y.id, tf.onesLike(y));

  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i];
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const dys = node.outputs.map((output) => accumulated.get(output.id) ?? null);
    const names = Object.keys(node.inputs);
    // The node's gradient function, and each input's gradient in its own tidy, exactly as tfjs calls them;
    // anything else they allocate (e.g. zeros for outputs without a gradient) is freed here.
    const dxs = tf.tidy(() => {
      const thunks = node.gradient!(dys);
      return names.map((name) => {
        if (!(name in thunks))
          throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(thunks)}.`);
        return tf.tidy(() => thunks[name]());
      });
    });
    // The outputs' gradients are consumed: release them before accumulating into the inputs.
    for (const output of node.outputs) {
      if (accumulated.has(output.id) && !requested.has(output.id)) unhold(output.id);
    }
    names.forEach((name, k) => {
      const dx = dxs[k];
      const x = node.inputs[name];
      if (dx.dtype !== "float32")
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
        );
      if (!tf.util.arraysEqual(dx.shape, x.shape))
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', ` +
            `which does not match the shape of the input '${x.shape}'`,
        );
      const previous = accumulated.get(x.id);
      if (previous === undefined) {
        hold(x.id, dx);
      } else {
        const sum = tf.add(previous, dx);
        unhold(x.id);
        hold(x.id, sum);
        free(previous);
        if (!dxs.slice(k + 1).includes(dx)) free(dx);
      }
    });
    for (const dy of dys) if (dy && !dxs.includes(dy)) free(dy);
    // The node's saved activations are read by its gradient only.
    freeSaved(node, held);
  }
  const grads = xs.map((x) => accumulated.get(x.id));
  for (const [id, gradient] of accumulated) if (!requested.has(id)) free(gradient);
  return grads;
}
