/**
 * VideoLLaMA in the model registry (model_type `mllm_video_llama`, not a
 * Hugging Face architecture): `config.json` ↔ {@link VideoLlamaConfig}, with
 * the backbones' configs as sub-documents in their own formats
 * (`vision_config` as CLIP's, `audio_config` as the labs' audio encoder's,
 * `text_config` as Llama's) and the two Q-Formers as BLIP-2's `qformer_config`.
 * No parity fixture: Video-LLaMA's reference needs EVA-CLIP, ImageBind and a
 * 7B LLaMA. Also the Q-Former sub-config reader and writer the other bridges share.
 */
import {
  hfOptionalBoolean,
  hfOptionalInteger,
  hfOptionalNumber,
  hfOptionalText,
  subConfig,
  type HFConfig,
} from "../io/hf_config";
import { resolveBlip2QFormerConfig, type Blip2QFormerConfig, type ResolvedBlip2QFormerConfig } from "./blip2";
import { clipVisionConfigFromHF, clipVisionConfigToHF } from "./clip_spec";
import { audioEncoderConfigFromHF, audioEncoderConfigToHF } from "./audio_encoder_spec";
import { llamaConfigFromHF, llamaConfigToHF } from "./llama_spec";
import {
  VideoLlamaForConditionalGeneration,
  resolveVideoLlamaConfig,
  type AudioSegmentTokens,
  type ResolvedVideoLlamaConfig,
  type TemporalModel,
  type VideoLlamaConfig,
} from "./video_llama";
import type { ModelSpec } from "./model_spec";
import type { ResolvedVideoTrackHeadConfig, TrackAttribute, VideoTrackHeadConfig } from "./video_track_head";
import type { ResolvedVideoObjectTrackerConfig, VideoObjectTrackerConfig } from "./video_object_tracker";

/** An `object_tracker_config` document → {@link VideoObjectTrackerConfig}. */
function objectTrackerConfigFromHF(config: HFConfig): VideoObjectTrackerConfig {
  const motionClasses = config.json.motion_classes;
  if (motionClasses !== undefined && !Array.isArray(motionClasses))
    throw new Error(
      `config: ${config.where}: "motion_classes" must be a list of class counts, got ${JSON.stringify(motionClasses)}`,
    );
  return {
    colors: hfOptionalInteger(config, "num_colors"),
    shapes: hfOptionalInteger(config, "num_shapes"),
    frames: hfOptionalInteger(config, "num_frames"),
    motionClasses: motionClasses as number[] | undefined, // checked by the tracker's resolver
    window: hfOptionalInteger(config, "window"),
    hiddenSize: hfOptionalInteger(config, "hidden_size"),
    trajectoryHiddenSize: hfOptionalInteger(config, "trajectory_hidden_size"),
  };
}

/** A resolved object tracker config → its `object_tracker_config` document. */
function objectTrackerConfigToHF(config: ResolvedVideoObjectTrackerConfig): Record<string, unknown> {
  return {
    num_colors: config.colors,
    num_shapes: config.shapes,
    num_frames: config.frames,
    motion_classes: [...config.motionClasses],
    window: config.window,
    hidden_size: config.hiddenSize,
    trajectory_hidden_size: config.trajectoryHiddenSize,
  };
}

/** A `track_head_config` document → {@link VideoTrackHeadConfig}. */
function trackHeadConfigFromHF(config: HFConfig): VideoTrackHeadConfig {
  const attributes = config.json.attributes;
  if (attributes !== undefined && !Array.isArray(attributes))
    throw new Error(`config: ${config.where}: "attributes" must be a list of {name, classes}, got ${JSON.stringify(attributes)}`);
  return {
    slots: hfOptionalInteger(config, "num_slots"),
    frames: hfOptionalInteger(config, "num_frames"),
    attributes: (attributes as { name: string; classes: number; token_ids?: number[] }[] | undefined)?.map((a) => ({
      name: a?.name,
      classes: a?.classes,
      ...(a?.token_ids !== undefined ? { tokenIds: a.token_ids } : {}),
    })) as TrackAttribute[] | undefined, // checked by the model's resolver
    codeTokens: hfOptionalBoolean(config, "code_tokens"),
    positionWeight: hfOptionalNumber(config, "position_weight"),
    codeTimeline: hfOptionalBoolean(config, "code_timeline"),
  };
}

/** A resolved track head config → its `track_head_config` document. */
function trackHeadConfigToHF(config: ResolvedVideoTrackHeadConfig): Record<string, unknown> {
  return {
    num_slots: config.slots,
    num_frames: config.frames,
    attributes: config.attributes.map((a) => ({
      name: a.name,
      classes: a.classes,
      ...(a.tokenIds ? { token_ids: [...a.tokenIds] } : {}),
    })),
    code_tokens: config.codeTokens,
    position_weight: config.positionWeight,
    code_timeline: config.codeTimeline,
  };
}

/** A `qformer_config` document → {@link Blip2QFormerConfig} (absent fields stay undefined for the model's resolver). */
export function qformerConfigFromHF(config: HFConfig): Blip2QFormerConfig {
  return {
    hiddenSize: hfOptionalInteger(config, "hidden_size"),
    intermediateSize: hfOptionalInteger(config, "intermediate_size"),
    numLayers: hfOptionalInteger(config, "num_hidden_layers"),
    numHeads: hfOptionalInteger(config, "num_attention_heads"),
    hiddenAct: hfOptionalText(config, "hidden_act"),
    layerNormEps: hfOptionalNumber(config, "layer_norm_eps"),
    crossAttentionFrequency: hfOptionalInteger(config, "cross_attention_frequency"),
    encoderHiddenSize: hfOptionalInteger(config, "encoder_hidden_size"),
  };
}

/** A resolved Q-Former config → its `qformer_config` document (BLIP-2's field names). */
export function qformerConfigToHF(config: ResolvedBlip2QFormerConfig): Record<string, unknown> {
  const q = resolveBlip2QFormerConfig(config);
  return {
    model_type: "blip_2_qformer",
    hidden_size: q.hiddenSize,
    intermediate_size: q.intermediateSize,
    num_hidden_layers: q.numLayers,
    num_attention_heads: q.numHeads,
    hidden_act: q.hiddenAct,
    layer_norm_eps: q.layerNormEps,
    cross_attention_frequency: q.crossAttentionFrequency,
    encoder_hidden_size: q.encoderHiddenSize,
  };
}

/** A sub-document without the keys that belong to a whole checkpoint. */
function nested(document: Record<string, unknown>): Record<string, unknown> {
  const { architectures: _architectures, torch_dtype: _dtype, ...rest } = document;
  return rest;
}

/** `config.json` → {@link VideoLlamaConfig}. */
export function videoLlamaConfigFromHF(config: HFConfig): ResolvedVideoLlamaConfig {
  return resolveVideoLlamaConfig({
    vision: clipVisionConfigFromHF(subConfig(config, "vision_config")),
    audio: audioEncoderConfigFromHF(subConfig(config, "audio_config")),
    text: llamaConfigFromHF(subConfig(config, "text_config")),
    videoQformer: qformerConfigFromHF(subConfig(config, "video_qformer_config")),
    audioQformer: qformerConfigFromHF(subConfig(config, "audio_qformer_config")),
    numVideoQueryTokens: hfOptionalInteger(config, "num_video_query_tokens"),
    numAudioQueryTokens: hfOptionalInteger(config, "num_audio_query_tokens"),
    maxFrames: hfOptionalInteger(config, "max_frames"),
    maxAudioSegments: hfOptionalInteger(config, "max_audio_segments"),
    framePatchPool: hfOptionalInteger(config, "frame_patch_pool"),
    temporalModel: hfOptionalText(config, "temporal_model") as TemporalModel | undefined,
    frameTokenPositions: hfOptionalBoolean(config, "frame_token_positions"),
    mergeFrameTokens: hfOptionalBoolean(config, "merge_frame_tokens"),
    frameDifferences: hfOptionalBoolean(config, "frame_differences"),
    audioSegmentTokens: hfOptionalText(config, "audio_segment_tokens") as AudioSegmentTokens | undefined,
    trackHead:
      config.json.track_head_config === undefined || config.json.track_head_config === null
        ? undefined
        : trackHeadConfigFromHF(subConfig(config, "track_head_config")),
    objectTracker:
      config.json.object_tracker_config === undefined || config.json.object_tracker_config === null
        ? undefined
        : objectTrackerConfigFromHF(subConfig(config, "object_tracker_config")),
  });
}

/** {@link VideoLlamaConfig} → its config.json document. */
export function videoLlamaConfigToHF(config: VideoLlamaConfig): Record<string, unknown> {
  const resolved = resolveVideoLlamaConfig(config);
  return {
    architectures: ["VideoLlamaForConditionalGeneration"],
    model_type: "mllm_video_llama",
    vision_config: clipVisionConfigToHF(resolved.vision),
    audio_config: nested(audioEncoderConfigToHF(resolved.audio)),
    text_config: nested(llamaConfigToHF(resolved.text)),
    video_qformer_config: qformerConfigToHF(resolved.videoQformer),
    audio_qformer_config: qformerConfigToHF(resolved.audioQformer),
    num_video_query_tokens: resolved.numVideoQueryTokens,
    num_audio_query_tokens: resolved.numAudioQueryTokens,
    max_frames: resolved.maxFrames,
    max_audio_segments: resolved.maxAudioSegments,
    frame_patch_pool: resolved.framePatchPool,
    temporal_model: resolved.temporalModel,
    frame_token_positions: resolved.frameTokenPositions,
    merge_frame_tokens: resolved.mergeFrameTokens,
    frame_differences: resolved.frameDifferences,
    audio_segment_tokens: resolved.audioSegmentTokens,
    ...(resolved.trackHead ? { track_head_config: trackHeadConfigToHF(resolved.trackHead) } : {}),
    ...(resolved.objectTracker ? { object_tracker_config: objectTrackerConfigToHF(resolved.objectTracker) } : {}),
    torch_dtype: "float32",
  };
}

export const VIDEO_LLAMA_SPEC: ModelSpec<ResolvedVideoLlamaConfig, VideoLlamaForConditionalGeneration> = {
  modelType: "mllm_video_llama",
  fromHF: videoLlamaConfigFromHF,
  toHF: videoLlamaConfigToHF,
  keyAliases: [],
  create: (config) => new VideoLlamaForConditionalGeneration(config),
};
