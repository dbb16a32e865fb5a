import type { KernelArgs } from "../registry";
/**
 * AdamW on the `webgpu` backend: one WGSL dispatch per parameter that writes param', m' and v' (a
 * shader with three read-write outputs, run by `runWebGpuMultiOutput`: tfjs's own programs write one
 * output each).
 */
import type * as tf from "@tensorflow/tfjs";
import { runWebGpuMultiOutput } from "../../engine/tfjs_internals";
import type { AdamWStepAttrs } from "./attrs";

type Args = KernelArgs;

const THREADS = 64;
/** The most workgroups in one dispatch dimension (WebGPU's default limit). */
const MAX_WORKGROUPS = 65535;

// One invocation per value; a dispatch over more than 65535 workgroups is split over y.
const SHADER = `
struct Uniforms {
  n : i32, groupsX : i32, learningRate : f32, beta1 : f32,
  oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32, epsilon : f32,
  weightDecay : f32, biasCorrection1 : f32, biasCorrection2 : f32, unused : f32,
};
@group(0) @binding(0) var<storage, read_write> paramOut : array<f32>;
@group(0) @binding(1) var<storage, read_write> mOut : array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut : array<f32>;
@group(0) @binding(3) var<storage, read> param : array<f32>;
@group(0) @binding(4) var<storage, read> grad : array<f32>;
@group(0) @binding(5) var<storage, read> m : array<f32>;
@group(0) @binding(6) var<storage, read> v : array<f32>;
@group(0) @binding(7) var<uniform> u : Uniforms;

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) group : vec3<u32>, @builtin(local_invocation_index) lane : u32) {
  let index = (i32(group.y) * u.groupsX + i32(group.x)) * ${THREADS} + i32(lane);
  if (index >= u.n) { return; }
  let g = grad[index];
  let mi = u.beta1 * m[index] + u.oneMinusBeta1 * g;
  let vi = u.beta2 * v[index] + u.oneMinusBeta2 * g * g;
  let p = param[index];
  mOut[index] = mi;
  vOut[index] = vi;
  paramOut[index] = p - u.learningRate * ((mi / u.biasCorrection1) / (sqrt(vi / u.biasCorrection2) + u.epsilon) + u.weightDecay * p);
}`;

/** inputs param, grad, m, v (one shape); attrs AdamWStepAttrs → [param', m', v'], in one dispatch. */
export function adamwWebGpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const { param, grad, m, v } = inputs;
  const a = attrs as AdamWStepAttrs;
  const n = param.shape.reduce((p, q) => p * q, 1);
  const groups = Math.max(1, Math.ceil(n / THREADS));
  const groupsX = Math.min(groups, MAX_WORKGROUPS);
  const f32 = (value: number) => ({ type: "float32" as const, data: [value] });
  const uniforms = [
    { type: "int32" as const, data: [n] },
    { type: "int32" as const, data: [groupsX] },
    ...[
      a.learningRate,
      a.beta1,
      1 - a.beta1,
      a.beta2,
      1 - a.beta2,
      a.epsilon,
      a.weightDecay,
      a.biasCorrection1,
      a.biasCorrection2,
      0,
    ].map(f32),
  ];
  return runWebGpuMultiOutput(
    backend,
    "adamw",
    SHADER,
    [groupsX, Math.ceil(groups / groupsX), 1],
    [param, grad, m, v],
    [param.shape, param.shape, param.shape],
    uniforms,
  );
}
