/**
 * AdamW on the `webgpu` backend: three element-wise WGSL programs (param', m', v'; a program writes one
 * output, and each recomputes the moments it needs: cheaper than a packed output and three slices).
 */
import type * as tf from "@tensorflow/tfjs";
import { runElementwise, type Uniform } from "../webgpu_programs";
import type { AdamWStepAttrs } from "./attrs";

type Args = { inputs: Record<string, tf.TensorInfo>; backend: object; attrs: Record<string, any> };

const M = "let mi = uniforms.beta1 * m[index] + uniforms.oneMinusBeta1 * g;";
const V = "let vi = uniforms.beta2 * v[index] + uniforms.oneMinusBeta2 * g * g;";

/** inputs param, grad, m, v (one shape); attrs AdamWStepAttrs → [param', m', v']. */
export function adamwWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const { param, grad, m, v } = inputs;
  const a = attrs as AdamWStepAttrs;
  const uniforms: Uniform[] = [
    { name: "learningRate", type: "f32", value: a.learningRate },
    { name: "beta1", type: "f32", value: a.beta1 },
    { name: "oneMinusBeta1", type: "f32", value: 1 - a.beta1 },
    { name: "beta2", type: "f32", value: a.beta2 },
    { name: "oneMinusBeta2", type: "f32", value: 1 - a.beta2 },
    { name: "epsilon", type: "f32", value: a.epsilon },
    { name: "weightDecay", type: "f32", value: a.weightDecay },
    { name: "biasCorrection1", type: "f32", value: a.biasCorrection1 },
    { name: "biasCorrection2", type: "f32", value: a.biasCorrection2 },
  ];
  const all = { param, grad, m, v };
  const p2 = runElementwise(
    backend,
    "adamw_param",
    all,
    param.shape,
    `let g = grad[index]; ${M} ${V}
        let p = param[index];
        let value = p - uniforms.learningRate * ((mi / uniforms.biasCorrection1) / (sqrt(vi / uniforms.biasCorrection2) + uniforms.epsilon) + uniforms.weightDecay * p);`,
    uniforms,
  );
  // A program binds only the inputs its shader reads (tfjs derives the binding layout from the shader).
  const m2 = runElementwise(backend, "adamw_m", { grad, m }, param.shape, `let g = grad[index]; ${M} let value = mi;`, uniforms);
  const v2 = runElementwise(backend, "adamw_v", { grad, v }, param.shape, `let g = grad[index]; ${V} let value = vi;`, uniforms);
  return [p2, m2, v2];
}
