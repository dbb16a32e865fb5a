/**
 * `Module`: a named tree of trainable tensors, like `torch.nn.Module`.
 *
 * Parameters are `tf.Variable`s registered under names (`"attention.query.weight"`),
 * so optimisers, checkpoints and summaries all see the same names. Child
 * modules are registered with {@link Module.module}; their parameters appear
 * under `<child>.<name>`.
 */
import * as tf from "@tensorflow/tfjs";

export abstract class Module {
  private readonly ownParameters = new Map<string, tf.Variable>();
  private readonly children = new Map<string, Module>();

  /** Registers a trainable tensor (takes ownership of `initial`). */
  protected parameter(name: string, initial: tf.Tensor, trainable = true): tf.Variable {
    if (this.ownParameters.has(name)) throw new Error(`${this.constructor.name}: parameter "${name}" is registered twice`);
    const variable = tf.variable(initial, trainable);
    initial.dispose();
    this.ownParameters.set(name, variable);
    return variable;
  }

  /** Registers a child module. */
  protected module<M extends Module>(name: string, child: M): M {
    if (this.children.has(name)) throw new Error(`${this.constructor.name}: child "${name}" is registered twice`);
    this.children.set(name, child);
    return child;
  }

  /** Every parameter with its dotted name, depth-first in registration order. */
  namedParameters(prefix = ""): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [name, variable] of this.ownParameters) out.push([prefix + name, variable]);
    for (const [name, child] of this.children) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  /** The trainable parameters (what an optimiser updates). */
  trainableParameters(): tf.Variable[] {
    return this.namedParameters()
      .map(([, variable]) => variable)
      .filter((variable) => variable.trainable);
  }

  /** Number of scalars in all parameters. */
  parameterCount(): number {
    return this.namedParameters().reduce((sum, [, variable]) => sum + variable.size, 0);
  }

  /** Frees every parameter. */
  dispose(): void {
    for (const [, variable] of this.namedParameters()) variable.dispose();
  }
}
