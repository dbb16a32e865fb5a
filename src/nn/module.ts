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

  /** Attaches a child module after construction (adapters do this); the name must be new. */
  addModule<M extends Module>(name: string, child: M): M {
    return this.module(name, child);
  }

  /** Detaches a child module (it is not disposed). */
  removeModule(name: string): Module | undefined {
    const child = this.children.get(name);
    this.children.delete(name);
    return child;
  }

  /** Detaches and frees a parameter (quantization replaces a weight this way). */
  protected removeParameter(name: string): void {
    this.ownParameters.get(name)?.dispose();
    this.ownParameters.delete(name);
  }

  /** Every module of the tree with its dotted path ("" for this one), depth-first. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
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

  /**
   * Assigns every parameter from `lookup(name)` (a tensor with the same shape),
   * then disposes what `lookup` returned. Missing or mis-shaped tensors are
   * collected and reported together, naming each, before anything is assigned.
   * @param where names the source in errors (a checkpoint path)
   */
  loadParameters(lookup: (name: string) => tf.Tensor | undefined, where: string): void {
    const loaded: [tf.Variable, tf.Tensor][] = [];
    const problems: string[] = [];
    for (const [name, variable] of this.namedParameters()) {
      const tensor = lookup(name);
      if (!tensor) {
        problems.push(`missing "${name}" [${variable.shape}]`);
        continue;
      }
      if (tensor.shape.join() !== variable.shape.join()) {
        problems.push(`"${name}" is [${tensor.shape}] but the model expects [${variable.shape}]`);
        tensor.dispose();
        continue;
      }
      loaded.push([variable, tensor]);
    }
    if (problems.length) {
      for (const [, tensor] of loaded) tensor.dispose();
      const shown = problems.slice(0, 12).join("; ") + (problems.length > 12 ? `; … ${problems.length - 12} more` : "");
      throw new Error(`${this.constructor.name}: cannot load ${where}: ${shown}`);
    }
    for (const [variable, tensor] of loaded) {
      tf.tidy(() => variable.assign(tensor.dtype === variable.dtype ? tensor : tensor.cast(variable.dtype)));
      tensor.dispose();
    }
  }

  /** Every parameter by name (tensors are the live variables, not copies). */
  stateDict(): Record<string, tf.Variable> {
    return Object.fromEntries(this.namedParameters());
  }

  /** Freezes (or unfreezes) every parameter of this module and its children. */
  setTrainable(trainable: boolean): void {
    for (const [, variable] of this.namedParameters()) variable.trainable = trainable;
  }

  /** Frees every parameter, and what every module of the tree holds besides ({@link disposeResources}). */
  dispose(): void {
    for (const [, variable] of this.namedParameters()) variable.dispose();
    for (const [, module] of this.namedModules()) module.disposeResources();
  }

  /**
   * Frees tensors a module holds that are not parameters (a quantized weight's packed codes and constants).
   * Called by `dispose` on every module of the tree, so a model's `dispose` reaches its children's. Default none.
   */
  protected disposeResources(): void {}
}
