/**
 * `tf.tidy` with the callback's own return type.
 *
 * `tf.tidy` keeps every tensor reachable from what the callback returns (in
 * objects and arrays, at any depth) and frees the rest, but its signature only
 * accepts `TensorContainer`, an index-signature type that typed interfaces
 * such as `CLIPOutput` are not assignable to. This wrapper is the one place
 * that cast is written.
 */
import * as tf from "@tensorflow/tfjs";

/** Runs `fn` in a tidy scope and returns its result, typed as `fn` returns it. */
export function tidy<T extends object | void>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}
