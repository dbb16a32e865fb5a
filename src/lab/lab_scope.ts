/**
 * Disposal of a lab's leftovers: a {@link LabScope} records every tensor and
 * variable created from the point it starts, and {@link LabScope.close}
 * disposes those the lab still holds (except what it is told to keep), so the
 * last cell of a lab frees everything without listing each tensor by name.
 *
 * It is a tfjs engine scope (what `tf.tidy` opens and closes around a
 * function) kept open across cells: `tf.engine().startScope()` at the start,
 * `endScope()` at the end, so tensors returned by `tf.tidy` inside it are
 * recorded too. Variables (model parameters, optimizer state) are not tracked
 * by scopes; they are the engine's registered variables that were not there at
 * the start. Tensors marked `tf.keep` inside a `tf.tidy` (KV caches, AdamW
 * slots) escape every scope, so while a LabScope is open the engine's `keep`
 * also hands them to the innermost one; they are disposed as well: kept means
 * "survive tf.tidy", and the lab is over.
 *
 * Reference: tfjs-core `engine.ts` (`startScope`, `endScope`, `track`, `keep`, `registeredVariables`).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";

/** What {@link LabScope.close} disposed, or what {@link LabScope.live} would. */
export interface LabLeftovers {
  /** Tensors created in the scope and not yet disposed (variables not included). */
  readonly tensors: number;
  /** Variables registered since the scope started and not yet disposed. */
  readonly variables: number;
  /** Bytes those tensors and variables hold (buffers shared with tensors outside the scope not counted by close). */
  readonly bytes: number;
}

/** The scope record of the tfjs engine (`ScopeState` in tfjs-core `engine.ts`, not exported by it). */
type EngineScope = ReturnType<typeof tf.engine>["state"]["activeScope"];

/** After this many recorded tensors the record drops those already disposed (it would otherwise grow with every step of a training loop). */
const COMPACT_AFTER = 4096;

/** Open scopes, innermost last, to name the one in the way when an outer one closes first. */
const openScopes: LabScope[] = [];

/**
 * Records the tensors and variables created from now on; {@link close} disposes
 * those still alive. Start it after `initEngine()` (a backend switch moves
 * nothing, but tensors of the old backend would be disposed on the new one).
 */
export class LabScope {
  /** `tf.memory().numTensors` when the scope started: after {@link close} the count is back to it. */
  readonly tensorsAtStart: number;
  private readonly scope: EngineScope;
  private readonly variablesAtStart: Set<string>;
  /** Tensors created from the start have ids from this one on (the engine numbers tensors in order). */
  private readonly firstTensorId: number;
  /** Tensors passed to `tf.keep` while this is the innermost open scope. */
  private readonly kept: tf.Tensor[] = [];
  private closed = false;

  constructor(
    /** Named in messages (`"lab 00"`). */
    readonly name = "lab",
  ) {
    const engine = tf.engine();
    this.tensorsAtStart = tf.memory().numTensors;
    this.variablesAtStart = new Set(Object.keys(engine.registeredVariables));
    const probe = tf.scalar(0);
    this.firstTensorId = probe.id + 1;
    probe.dispose();
    engine.startScope(`LabScope(${name})`);
    this.scope = engine.state.activeScope;
    compactWhenLong(this.scope.track);
    compactWhenLong(this.kept);
    openScopes.push(this);
    hookKeep();
  }

  /** Whether {@link close} has run. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** What the lab holds now: tensors created in the scope and not disposed, and new variables. */
  live(): LabLeftovers {
    const tensors = this.liveTensors();
    const variables = this.newVariables();
    return { tensors: tensors.length, variables: variables.length, bytes: bytesOf([...tensors, ...variables]) };
  }

  /**
   * Disposes every tensor created since the scope started and every variable
   * registered since, except those in `keep` (tensors, or modules whose
   * parameters stay), and ends the scope; kept tensors move to the enclosing
   * scope like the result of `tf.tidy`. Call it at the top level of a cell,
   * not inside `tf.tidy`. Returns what it disposed.
   */
  close(keep: readonly (tf.Tensor | Module)[] = []): LabLeftovers {
    if (this.closed) throw new Error(`LabScope "${this.name}" is already closed`);
    const engine = tf.engine();
    if (engine.state.activeScope !== this.scope) {
      const inner = openScopes[openScopes.length - 1];
      if (inner && inner !== this) throw new Error(`LabScope "${this.name}": close the inner LabScope "${inner.name}" first (it started later and is still open)`);
      const active = engine.state.activeScope;
      if (!engine.state.scopeStack.includes(this.scope)) throw new Error(`LabScope "${this.name}": its engine scope is gone (was the engine reset?)`);
      throw new Error(`LabScope "${this.name}": close() was called inside another scope ("${active?.name}"), e.g. within tf.tidy; call it at the top level of a cell`);
    }
    const kept = new Set<number>();
    for (const item of keep) {
      if (item instanceof Module) for (const [, parameter] of item.namedParameters()) kept.add(parameter.id);
      else if (item && typeof item === "object" && typeof (item as tf.Tensor).id === "number") kept.add(item.id);
      else throw new TypeError(`LabScope "${this.name}".close: keep must hold tensors or modules, got ${String(item)}`);
    }
    const tensors = this.liveTensors().filter((t) => !kept.has(t.id));
    const variables = this.newVariables().filter((v) => !kept.has(v.id));
    const bytesBefore = tf.memory().numBytes;
    tf.dispose([...tensors, ...variables]);
    const leftovers = { tensors: tensors.length, variables: variables.length, bytes: bytesBefore - tf.memory().numBytes };
    // Ends the scope; the kept tensors created in it are recorded by the enclosing scope, as tidy does with its result.
    engine.endScope(this.scope.track.filter((t) => kept.has(t.id)));
    openScopes.splice(openScopes.indexOf(this), 1);
    if (openScopes.length === 0) unhookKeep();
    this.closed = true;
    return leftovers;
  }

  /** Called by the engine's `keep` while this is the innermost open scope. */
  private recordKept(tensor: tf.Tensor): void {
    if (tensor.id >= this.firstTensorId) this.kept.push(tensor);
  }

  private liveTensors(): tf.Tensor[] {
    if (this.closed) return [];
    const live = new Map<number, tf.Tensor>(); // a tensor may be recorded more than once (kept, then returned)
    for (const t of [...this.scope.track, ...this.kept]) if (!t.isDisposed && !(t instanceof tf.Variable)) live.set(t.id, t);
    return [...live.values()];
  }

  private newVariables(): tf.Variable[] {
    if (this.closed) return [];
    return Object.entries(tf.engine().registeredVariables)
      .filter(([name, variable]) => !this.variablesAtStart.has(name) && !variable.isDisposed)
      .map(([, variable]) => variable);
  }
}

/** Starts a {@link LabScope}: `const lab = trackTensors("lab 00")` in the setup cell, `lab.close()` in the last. */
export function trackTensors(name?: string): LabScope {
  return new LabScope(name);
}

let originalKeep: (<T extends tf.Tensor>(result: T) => T) | undefined;

/** Lets the innermost open LabScope see what `tf.keep` marks (restored by {@link unhookKeep}). */
function hookKeep(): void {
  if (originalKeep) return;
  const engine = tf.engine();
  const keep = (originalKeep = engine.keep);
  engine.keep = function <T extends tf.Tensor>(this: typeof engine, result: T): T {
    (openScopes[openScopes.length - 1] as unknown as { recordKept(t: tf.Tensor): void } | undefined)?.recordKept(result);
    return keep.call(this, result) as T;
  };
}

function unhookKeep(): void {
  if (!originalKeep) return;
  tf.engine().keep = originalKeep;
  originalKeep = undefined;
}

/** Makes the engine's record of a long-lived scope drop disposed tensors whenever it doubles past {@link COMPACT_AFTER}. */
function compactWhenLong(track: tf.Tensor[]): void {
  let limit = COMPACT_AFTER;
  const push = Array.prototype.push;
  Object.defineProperty(track, "push", {
    value(...items: tf.Tensor[]): number {
      if (track.length >= limit) {
        let kept = 0;
        for (const t of track) if (!t.isDisposed) track[kept++] = t;
        track.length = kept;
        limit = Math.max(COMPACT_AFTER, 2 * kept);
      }
      return push.apply(track, items);
    },
  });
}

function bytesOf(tensors: tf.Tensor[]): number {
  const seen = new Set<object>();
  let bytes = 0;
  for (const t of tensors) {
    if (seen.has(t.dataId) || t.dtype === "string" || t.dtype === "complex64") continue; // views share their buffer
    seen.add(t.dataId);
    bytes += t.size * tf.util.bytesPerElement(t.dtype);
  }
  return bytes;
}
