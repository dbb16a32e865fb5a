/** The attributes of one AdamW step (kernel `MllmAdamW`). */
export interface AdamWStepAttrs {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** 1 − β1^t at step t. */
  biasCorrection1: number;
  /** 1 − β2^t at step t. */
  biasCorrection2: number;
}
