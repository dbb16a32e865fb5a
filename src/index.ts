/**
 * mllm-labs: the shared library of the multimodal LLM labs.
 *
 * The notebooks import it by package name:
 *   import { initEngine, nn, GPT } from "mllm-labs";
 */
export { initEngine, engineInfo, closeEngine, type BackendName, type EngineArgs, type EngineInfo } from "./engine/init";
export { startDispatchCount, dispatchUnit } from "./engine/dispatch_count";
// Training memory as in PyTorch (issue 18): the freeing backward walk, buffer-based accounting, the fused 4-bit product.
export { valueAndGradients, type ValueAndGradients } from "./engine/backprop";
export { startMemoryMeter, bufferBytes, measurePeakBytes } from "./engine/memory";
export {
  quantizedMatMul,
  quantizedMatMulComposite,
  QUANTIZED_MATMUL,
  type Quantized4bitTensors,
} from "./kernels/quantized_matmul";
export { Random } from "./util/random";
export { tidy } from "./util/tidy";

import { Module } from "./nn/module";
import { Linear } from "./nn/linear";
import { Embedding } from "./nn/embedding";
import { LayerNorm } from "./nn/layer_norm";
import { scaledDotProductAttention, causalMask } from "./nn/attention";
import { MultiHeadAttention } from "./nn/multi_head_attention";
import { MLP, gelu } from "./nn/mlp";
import { TransformerBlock } from "./nn/transformer_block";

/** Building blocks, smallest first. */
export const nn = {
  Module,
  Linear,
  Embedding,
  LayerNorm,
  scaledDotProductAttention,
  causalMask,
  MultiHeadAttention,
  MLP,
  gelu,
  TransformerBlock,
};
export {
  Module,
  Linear,
  Embedding,
  LayerNorm,
  scaledDotProductAttention,
  causalMask,
  MultiHeadAttention,
  MLP,
  gelu,
  TransformerBlock,
};
export type { AttentionResult } from "./nn/attention";

export { GPT, GPT_PRESETS, resolveGPTConfig, type GPTConfig, type GPTOutput, type GPTForwardOptions } from "./models/gpt";
export { crossEntropy } from "./train/loss";
export { readWav, decodeWav, monoSamples, type Waveform, type Downmix } from "./io/wav";
export { AdamW, type AdamWArgs } from "./train/adamw";
export { layerNorm } from "./kernels/layer_norm";
export { rmsNorm } from "./kernels/rms_norm";

// Model library: the real architectures, loading Hugging Face checkpoints.
export { RMSNorm } from "./nn/rms_norm";
export { activation, geluExact, quickGelu, silu } from "./nn/activations";
export { rotaryTables, applyRotary, rotateHalf, inverseFrequencies, resolveRopeConfig, type RopeConfig } from "./nn/rotary";
export { KVCache } from "./nn/kv_cache";
export { attentionMask, branchMask, type AttentionMask } from "./nn/masks";
export { repeatKeyValue, splitHeads, mergeHeads } from "./nn/attention";
export { PatchEmbedding } from "./nn/patch_embedding";
export { FeedForward } from "./nn/feed_forward";
export { PreNormEncoderLayer, type SelfAttentionModule } from "./nn/pre_norm_encoder_layer";
export type { LinearAdapter, WeightSource } from "./nn/linear";
export {
  LlamaForCausalLM,
  LlamaModel,
  LLAMA_PRESETS,
  resolveLlamaConfig,
  type LlamaConfig,
  type ResolvedLlamaConfig,
  type LlamaModelOutput,
  type CausalLMOutput,
  type LlamaInputs,
  type GenerateOptions,
} from "./models/llama";
export { sampleToken, argmax, type SamplingOptions } from "./models/sampling";
export {
  CLIPModel,
  CLIPVisionTransformer,
  CLIPTextTransformer,
  resolveCLIPConfig,
  resolveCLIPVisionConfig,
  resolveCLIPTextConfig,
  type CLIPConfig,
  type CLIPVisionConfig,
  type CLIPTextConfig,
} from "./models/clip";
export { LlavaForConditionalGeneration, resolveLlavaConfig, type LlavaConfig } from "./models/llava";
export { Blip2ForConditionalGeneration, Blip2QFormerModel, resolveBlip2Config, type Blip2Config } from "./models/blip2";
export { mergeImageTokens, checkImageTokens } from "./models/merge_image_tokens";
// BLIP-2 stage 1 and 2 and InstructBLIP (lab 01).
export {
  Blip2QFormerWithText,
  Blip2QFormerMultimodalLayer,
  qformerAttention,
  type Blip2QFormerTextConfig,
  type QFormerOutput,
} from "./models/blip2_qformer";
export {
  itcAttentionMask,
  itmAttentionMask,
  itgAttentionMask,
  itcSimilarity,
  itcLoss,
  sampleHardNegatives,
  itmLoss,
  itgLoss,
  shiftedLanguageModelLoss,
  assembleSoftPrompt,
  type SoftPrompt,
} from "./models/blip2_losses";
export {
  Blip2ForPretraining,
  Blip2QueryBridge,
  type Blip2PretrainingConfig,
  type QFormerText,
  type Stage1Losses,
} from "./models/blip2_pretraining";
export {
  Blip2Pipeline,
  frozenImageFeatures,
  languageText,
  qformerText,
  vqaPrompt,
  CAPTION_INSTRUCTION,
  type Blip2GenerateArgs,
  type LanguageText,
} from "./pipelines/blip2";
export {
  loadBlip2Pipeline,
  blip2BridgeConfig,
  splitFeatures,
  freshSceneFeatures,
  joinScenes,
  trainStage1,
  trainStage2,
  initialiseInstructPath,
  evaluateBlip2,
  BLIP2_PLAN,
  type SceneFeatures,
  type StageArgs,
  type StageProgress,
  type StageResult,
  type Blip2Evaluation,
  type Blip2Plan,
  type Blip2InstructPhase,
  questionsOfTypes,
} from "./pretrain/blip2";
export { SafetensorsFile, Checkpoint, saveSafetensors, saveCheckpoint, type SafetensorsDtype } from "./io/safetensors";
export { readHFConfig } from "./io/hf_config";
export { llamaConfigFromHF, llamaConfigToHF } from "./models/llama_spec";
export { clipConfigFromHF, clipConfigToHF, clipVisionConfigToHF } from "./models/clip_spec";
export { llavaConfigFromHF, llavaConfigToHF } from "./models/llava_spec";
export { blip2ConfigFromHF, blip2ConfigToHF } from "./models/blip2_spec";
export { audioEncoderConfigFromHF, audioEncoderConfigToHF } from "./models/audio_encoder_spec";
export { gptConfigFromHF, gptConfigToHF } from "./models/gpt_spec";
export { MODEL_SPECS, modelSpec, findModelSpec, registeredModelTypes } from "./models/registry";
export type { ModelSpec, KeyAliases } from "./models/model_spec";
export {
  loadLlama,
  loadCLIP,
  loadCLIPVision,
  loadLlava as loadLlavaModel,
  loadBlip2,
  loadPretrained,
  loadWeights,
  loadWithSpec,
} from "./io/pretrained";
export {
  preprocessClipImage,
  clipPixelValues,
  decodeRgb,
  CLIP_MEAN,
  CLIP_STD,
  type ClipImageProcessorConfig,
} from "./preprocess/clip_image";
export { whisperLogMel, whisperLogMelFromWav, melFilterBank } from "./preprocess/whisper_mel";
export { runParity, formatReport as formatParityReport, type ParityReport } from "./parity/run";

// PEFT: LoRA and QLoRA.
export { LoraModel, getLoraModel, readAdapterConfig, resolveLoraConfig, type LoraConfig } from "./peft/lora";
export { LoraLayer } from "./peft/lora_layer";
export {
  quantize4bit,
  dequantize4bit,
  doubleQuantize,
  dynamicMap,
  bitsPerParameter,
  stateAbsmax,
  NF4_CODE,
  FP4_CODE,
  type QuantState4bit,
} from "./peft/quantize_4bit";
// Lab 04: NF4's code values from normal quantiles.
export { createNormalMap } from "./peft/normal_map";
export { normalQuantile } from "./util/normal";
export { QuantizedWeight4bit } from "./peft/quantized_weight";
export { quantize, type QuantizeOptions, type QuantizedLayerReport } from "./peft/quantize";

// The data world: generators, loaders, tokenizer, backbones.
export { generateWorld, GENERATORS, readJsonlFile, type WorldSize } from "./data/world";
export { SPLITS, type Split } from "./data/dataset_writer";
export {
  COLORS,
  COLOR_NAMES,
  SHAPE_NAMES,
  SIZES,
  SIZE_NAMES,
  type ColorName,
  type ShapeName,
  type SizeName,
} from "./data/vocabulary";
export { sampleScene, sceneSvg, svgToRgb, renderScene, type Scene, type SceneObject } from "./data/scene";
export { captionScene, relation, placeWords } from "./data/captions";
export { askQuestions, vqaAccuracy, normalizeAnswer, type VqaPair } from "./data/vqa";
export { sampleStory, type Story } from "./data/story";
export { sampleVideo, type VideoClip } from "./data/video";
export { encodeWav } from "./io/wav";
export { soundEventClip, spokenWordClip, videoSoundtrack, COLOR_PITCH, SHAPE_TIMBRE } from "./data/audio";
export { sampleSensorWindow, ACTIVITIES, SENSOR_CHANNELS, SENSOR_RATE, type Activity } from "./data/sensors";
export { samplePointCloud, SOLIDS, type PointCloud } from "./data/point_cloud";
export { sampleScan, scanInstructions, MEDICAL_FINDINGS_INSTRUCTION, type Scan } from "./data/medical";
export { parseProgram, sceneToProgram, scoreProgram, type ProgramScore } from "./data/drawing_language";
export { sampleSentiment, combineSentiment, SENTIMENTS, type Sentiment } from "./data/sentiment";
export {
  openSplit,
  recordBatches,
  imageBatches,
  audioBatches,
  videoBatches,
  arrayBatches,
  imageTensor,
  videoTensor,
  logMelTensor,
  readClip,
  storedArray,
  type DatasetSplit,
  type Batch,
  type PixelNormalization,
} from "./data/loaders";
export {
  loadTokenizer,
  trainWorldTokenizer,
  TextTokenizer,
  SPECIAL_TOKENS,
  CHAT_TEMPLATE,
  type ChatMessage,
} from "./tokenizer/tokenizer";
export { trainByteLevelBpe } from "./tokenizer/bpe_trainer";
export { AudioEncoder, AUDIO_ENCODER_PRESETS, resolveAudioEncoderConfig, type AudioEncoderConfig } from "./models/audio_encoder";
export { loadAudioEncoder } from "./io/pretrained";
export { whisperLogMelValues } from "./preprocess/whisper_mel";
export { pretrain, evaluateCheckpoint, BACKBONES, PRETRAINED } from "./pretrain/run";

// The lab helpers: checks, data paths, disposal of a lab's leftovers (notebooks never define their own).
export {
  check,
  checkShape,
  checkClose,
  maxAbsDiff,
  CheckError,
  type ExpectedShape,
  type CloseArgs,
  type CloseReport,
  type Numeric,
} from "./lab/checks";
export { worldPath, samplePath, checkpointPath, dataPath, WORLD_ENV } from "./lab/paths";
export { LabScope, trackTensors, type LabLeftovers } from "./lab/lab_scope";

// Lab 02: LLaVA visual instruction tuning.
export { LLAVA_PROJECTOR_TYPES, LlavaMultiModalProjector, type LlavaProjectorType, type LlavaInputs } from "./models/llava";
export {
  IGNORE_INDEX,
  IMAGE_PLACEHOLDER,
  TokenizationMismatchError,
  expandImageTokens,
  toChatMessages,
  withoutImages,
  conversationSegments,
  tokenizeConversation,
  tokenizePlain,
  checkPiecesMatch,
  padConversations,
  type ConversationTurn,
  type ConversationArgs,
  type TokenizedConversation,
  type ConversationSegment,
  type PaddedBatch,
} from "./data/conversation";
export { packBranches, type PackedBranches } from "./data/packed_branches";
export {
  sceneConversation,
  sceneCaption,
  storedConversation,
  BRIEF_DESCRIPTION_PROMPTS,
  CONVERSATION_SETS,
  type ConversationSet,
  type SceneRecordForLlava,
} from "./data/llava_instructions";
export {
  LlavaTrainer,
  VisionFeatureCache,
  freezeForStage,
  llavaBatch,
  llavaLoss,
  disposeBatch,
  paddedPositions,
  splitByLength,
  type LlavaStage,
  type LlavaStepBatch,
  type LlavaTrainerArgs,
  type LlavaTrainingBatch,
} from "./pretrain/llava_training";
export { llavaFromBackbones, type LlavaFromBackbonesArgs } from "./pretrain/llava_setup";
// Lab 02: the llava checkpoint, its blind twin and eval (`loadLlava` returns the model and its tokenizer;
// `loadLlavaModel` above loads any transformers LLaVA folder as a model alone).
export {
  pretrainLlava,
  loadLlava,
  evaluateLlava,
  blindTwinOf,
  evaluateLlavaCheckpoint,
  llavaPlanFor,
  LLAVA_PLAN,
  LLAVA_ABLATIONS,
  LLAVA_NEIGHBOURS,
  LLAVA_METRIC_NOTES,
  FRESH_SENTIMENT_ITEMS,
  FRESH_SENTIMENT_SEED,
  FRESH_MEDICAL_SEED,
  QUICK_EVAL_LIMIT,
  LLAVA_TEST_SETS,
  featureCache,
  type LlavaTestSet,
  type ImageSource,
  type LoadedLlava,
  type LlavaPlan,
  type LlavaRoundOrder,
  type LlavaPretrainArgs,
  type EvaluateLlavaOptions,
  type LlavaEvaluation,
} from "./pretrain/llava";
export {
  PRESENCE_PAIRS,
  presenceLogits,
  presenceScenes,
  presenceTargets,
  trainProjectorPresence,
  type LlavaPresencePlan,
  type PresenceRun,
  type PresenceScene,
} from "./pretrain/llava_presence";
export { conversationFromPairs, CODE_INSTRUCTIONS, sentimentInstruction } from "./data/llava_instructions";
// Lab 02: the domain adapters on llava (`npm run pretrain -- llava-sentiment`, `-- llava-medical`), measured by `evaluateLoraAdapter`.
export {
  pretrainLlavaSentiment,
  pretrainLlavaMedical,
  pretrainLlavaDomain,
  llavaDomainMarkdown,
  LLAVA_SENTIMENT_PLAN,
  LLAVA_SENTIMENT,
  LLAVA_MEDICAL_PLAN,
  LLAVA_MEDICAL,
  type LlavaDomain,
  type LlavaDomainPlan,
  type LlavaDomainCard,
} from "./pretrain/llava_domain";
// Lab 02: the code-generation model, a full tune of llava on drawing programs (`npm run pretrain -- llava-code`, its
// blind twin `-- llava-code-blind`), measured by `evaluateLlavaCheckpoint`.
export {
  pretrainLlavaCode,
  codeTuningExamples,
  inReadingOrder,
  checkCodePlan,
  llavaCodeMarkdown,
  LLAVA_CODE_PLAN,
  CODE_FRESH_SEED_OFFSET,
  type LlavaCodePlan,
  type LlavaCodeCard,
  type CodeExample,
} from "./pretrain/llava_code";
// Lab 02: every full tune of a committed llava (its own folder and blind twin), and the one against object hallucination
// (`npm run pretrain -- llava-robust`, its blind twin `-- llava-robust-blind`).
export { runLlavaFullTune, type FullTuneExample, type LlavaFullTune, type LlavaFullTuneCard } from "./pretrain/llava_full_tune";
export {
  pretrainLlavaRobust,
  checkRobustPlan,
  LLAVA_ROBUST_PLAN,
  LLAVA_ROBUST_NEIGHBOURS,
  type LlavaRobustPlan,
  type LlavaRobustCard,
} from "./pretrain/llava_robust";
// Lab 04: the LoRA / QLoRA sweep on lab 02's LLaVA (`npm run pretrain -- lora-sweep`) and its adapter's eval.
export {
  pretrainLoraSweep,
  evaluateLoraAdapter,
  sweepMarkdown,
  LORA_SWEEP_PLAN,
  type LoraSweepPlan,
  type LoraSweepRunSpec,
  type LoraSweepRow,
  type LoraSweepCard,
  type LoraSweepArgs,
} from "./pretrain/lora_sweep";
export {
  chat,
  chatBatch,
  chatPromptIds,
  chatStopTokens,
  type ChatOptions,
  type ChatReply,
  type ChatImage,
  type ChatDecodingOptions,
} from "./pipelines/llava_chat";
export {
  buildPopeQuestions,
  popeQuestion,
  popeMetrics,
  parseYesNo,
  POPE_NEGATIVES,
  type PopeNegatives,
  type PopeQuestion,
  type PopeImage,
  type PopeMetrics,
} from "./metrics/pope";
export {
  classificationMetrics,
  parseClass,
  precisionRecallF1,
  sentimentMetrics,
  sentimentRuleBaselines,
  SENTIMENT_CLASSES,
  type ClassificationMetrics,
  type PrecisionRecallF1,
  type SentimentItem,
} from "./metrics/classification";
export {
  medicalFindingsMetrics,
  parseFindings,
  type MedicalFindingsMetrics,
  type FindingLesion,
  type ParsedFindings,
} from "./metrics/medical_findings";
export { programMetrics, normalizeProgram, type ProgramMetrics, type ProgramMetricsArgs } from "./metrics/program";

// Metrics for the labs' evaluations (BLEU, CIDEr-D, Recall@K, ITM accuracy) and a table that prints them beside their baselines.
export { bleu, bleu4, ciderD, ciderDPerImage, recallAtK, chanceRecallAtK, imageTextRecall, itmAccuracy } from "./metrics";
export { metricTable, type MetricColumn, type MetricRow, type MetricTableArgs } from "./lab/metric_table";

// Lab 05 — visual storytelling: multi-image prompts (LlavaInputs.framesPerRow, LlavaConfig.frameEmbeddings), the decoding a
// storyteller needs (GenerateOptions: numBeams, lengthPenalty, earlyStopping, repetitionPenalty, noRepeatNgramSize), and story metrics.
export { multiImagePrompt, countImagePlaceholders, storyText, type MultiImagePromptArgs } from "./data/story_prompt";
export {
  applyRepetitionPenalty,
  applyNoRepeatNgram,
  bannedNgramTokens,
  processLogits,
  logSoftmaxInPlace,
  validateLogitsProcessorOptions,
  type LogitsProcessorOptions,
} from "./models/logits_processors";
export {
  beamSearch,
  validateBeamSearchOptions,
  type BeamSearchOptions,
  type BeamSearchResult,
  type BeamStep,
  type EarlyStopping,
} from "./models/beam_search";
export { rougeL, rougeLPerItem, rougeLTokens, longestCommonSubsequence, ROUGE_L_BETA } from "./metrics/rouge";
export {
  sentenceMentions,
  splitSentences,
  storyMentions,
  mentionName,
  EVENT_WORDS,
  type ObjectMention,
  type SentenceMentions,
} from "./metrics/story_mentions";
export {
  storyMetrics,
  storyGrounding,
  storyRepetition,
  storyOrder,
  frameActors,
  frameAnnotations,
  groundingRates,
  sumGroundingCounts,
  type StoryMetrics,
  type StoryMetricsArgs,
  type FrameAnnotation,
  type FrameObject,
  type GroundingCounts,
  type GroundingRates,
  type StoryGrounding,
  type RepetitionCounts,
  type OrderCounts,
} from "./metrics/story";
// Lab 05 — the storyteller: image-token pooling (LlavaConfig.imagePoolStride), `npm run pretrain -- storyteller` and its eval
// with baselines (per-frame captions by lab 02's LLaVA, shuffled frames, blind).
export { poolImageTokens, patchNeighbourhoods } from "./models/llava";
export {
  pretrainStoryteller,
  evaluateStoryteller,
  evaluateStorytellerCheckpoint,
  loadStoryteller,
  isStoryteller,
  storytellerMetrics,
  storytellerConversation,
  storytellerUserTurn,
  storedStories,
  freshStories,
  filmstripFrames,
  withImagePooling,
  STORYTELLER_PLAN,
  STORYTELLER_PROMPT,
  STORYTELLER_NEIGHBOURS,
  STORYTELLER_QUICK_EVAL_LIMIT,
  STORY_FRAMES,
  STORY_TOKENS,
  CAPTION_PROMPT,
  type StorytellerPlan,
  type StorytellerPrompt,
  type StorytellerPretrainArgs,
  type StoryExample,
  type StoryDecoding,
  type EvaluateStorytellerOptions,
  type StorytellerEvaluation,
  type LoadedStoryteller,
  type StorytellerMarker,
} from "./pretrain/storyteller";
// The object-map objective (lab 05's storyteller, and a LLaVA plan option): each image token asked which colour–shape
// pairs are centred in its cell, through a read-out dropped after training.
export {
  ObjectMapHead,
  objectMapTargets,
  checkObjectMapObjective,
  UNANNOTATED,
  type ObjectMapObjective,
  type MappedObject,
} from "./pretrain/object_map";
// Lab 03: VideoLLaMA (video and audio branches) and the same bridge for IMU windows and point clouds.
export {
  QFormerBridge,
  resolveQFormerBridgeConfig,
  stepKeyMask,
  meanOverSteps,
  attentionOverSteps,
  type QFormerBridgeConfig,
  type ResolvedQFormerBridgeConfig,
  type QFormerBridgeOutput,
} from "./models/qformer_bridge";
export {
  VideoLlamaForConditionalGeneration,
  resolveVideoLlamaConfig,
  VIDEO_LLAMA_PRESETS,
  TEMPORAL_MODELS,
  type VideoLlamaConfig,
  type ResolvedVideoLlamaConfig,
  type VideoLlamaInputs,
  type VideoLlamaOutput,
  type VideoLlamaBackbones,
  type TemporalModel,
  type AudioSegmentTokens,
} from "./models/video_llama";
export { VIDEO_LLAMA_SPEC, videoLlamaConfigFromHF, videoLlamaConfigToHF } from "./models/video_llama_spec";
export {
  VideoTrackHead,
  resolveVideoTrackHeadConfig,
  slotPermutations,
  WORLD_TRACK_ATTRIBUTES,
  type VideoTrackHeadConfig,
  type ResolvedVideoTrackHeadConfig,
  type TrackAttribute,
  type TrackPredictions,
  type TrackTargets,
  type TrackSetLoss,
} from "./models/video_track_head";
export {
  VideoObjectTracker,
  resolveVideoObjectTrackerConfig,
  cellNeighbourhoods,
  type VideoObjectTrackerConfig,
  type ResolvedVideoObjectTrackerConfig,
  type IdentityTracks,
  type IdentityTargets,
  type TrackerLoss,
} from "./models/video_object_tracker";
export {
  ImuEncoder,
  resolveImuEncoderConfig,
  imuTokenCount,
  IMU_ENCODER_PRESETS,
  type ImuEncoderConfig,
  type ImuEncoderOutput,
} from "./models/imu_encoder";
export {
  PointEncoder,
  resolvePointEncoderConfig,
  POINT_ENCODER_PRESETS,
  type PointEncoderConfig,
  type PointEncoderOutput,
} from "./models/point_encoder";
export {
  ModalityLlm,
  resolveModalityLlmConfig,
  MODALITIES,
  MODALITY_LLM_PRESETS,
  type Modality,
  type ModalityLlmConfig,
  type ResolvedModalityLlmConfig,
  type ModalityLlmOutput,
} from "./models/modality_bridge";
export { MODALITY_LLM_SPEC, modalityLlmConfigFromHF, modalityLlmConfigToHF } from "./models/modality_bridge_spec";
// Lab 03's notebook: the warm-up + cosine schedule the pretraining recipes use, for its live run.
export { learningRateAt } from "./pretrain/common";
export {
  sampleFrameIndices,
  segmentAudio,
  segmentLogMel,
  shuffledFrameOrder,
  singleMiddleFrame,
  selectFrames,
  VIDEO_FRAMES_PER_SECOND,
  type FrameSample,
  type AudioSegments,
  type LastSegment,
  type SegmentLogMelArgs,
} from "./data/temporal_sampling";
export {
  videoQuestionType,
  videoQaAccuracyByType,
  VIDEO_QUESTION_TYPES,
  type VideoQuestionType,
  type VideoQaItem,
  type TypeAccuracy,
} from "./metrics/video_qa";
export {
  audioEventAccuracy,
  sensorActivityMetrics,
  pointCloudMetrics,
  parseCadence,
  type AudioEventItem,
  type SensorItem,
  type PointCloudItem,
} from "./metrics/modality_answers";
// Lab 03 — `npm run pretrain -- videollama` and its eval: order and audio-visual questions derived from a clip's tracks,
// the clip sets with frozen features, the training stages, multiple-choice scoring of the questions that offer two
// candidates, the baselines (single frame, shuffled, video only, without sound, audio only, blind).
export { orderQuestions, audioVisualQuestions, offeredCandidates, trackTimings, type TrackTiming } from "./data/video_questions";
export {
  trackTargetArrays,
  gatherTrackTargets,
  disposeTrackTargets,
  worldTrackAttributes,
  identityTargetArrays,
  gatherIdentityTargets,
  trackIdentity,
  WORLD_MOTION_ATTRIBUTE_NAMES,
  type IdentityTargetArrays,
  WORLD_TRACK_CLASS_NAMES,
  type TrackTargetArrays,
} from "./data/video_tracks";
export {
  pretrainVideoLlama,
  evaluateVideoLlama,
  evaluateVideoLlamaCheckpoint,
  loadVideoLlama,
  storedClipSet,
  freshClipSet,
  orderClipSet,
  audioVisualClipSet,
  soundEventSet,
  joinClipSets,
  disposeClipSet,
  answerClipQuestions,
  candidateLogLikelihoods,
  rescoreVideoLlamaCard,
  trainingItems,
  trainBridges,
  trainTrackHead,
  trackHeadAccuracy,
  trainObjectTracker,
  withDetections,
  objectTrackerAccuracy,
  renderedFrameInputs,
  videoLlamaForPlan,
  videoAnswerVariables,
  renderedFrameFeatures,
  videoQuestionPrompt,
  VIDEO_CAPTION_QUESTION,
  SOUND_QUESTION,
  VIDEOLLAMA_PLAN,
  VIDEOLLAMA_BACKBONES,
  VIDEOLLAMA_CHANCE,
  VIDEOLLAMA_METRIC_NOTES,
  type VideoLlamaPlan,
  type JointBatch,
  type TrackHeadAccuracy,
  type ObjectTrackerAccuracy,
  type FrameInputs,
  type FrameOptions,
  type ClipQuestion,
  type ClipSet,
  type ViewArgs,
  type TrainingTask,
  type LoadedVideoLlama,
  type VideoLlamaEvaluation,
  type EvaluateVideoLlamaArgs,
} from "./pretrain/videollama";
// Lab 03 — the sensors and points checkpoints (`npm run pretrain -- sensors|points`), their loader and eval with baselines.
export {
  pretrainModality,
  evaluateModality,
  evaluateModalityPipeline,
  loadModalityPipeline,
  answerModality,
  blindModalityAnswer,
  modalityMetrics,
  storedModalityData,
  freshModalityData,
  MODALITY_SETS,
  MODALITY_PLANS,
  MODALITY_LANGUAGE_CHECKPOINT,
  type ModalitySet,
  type ModalityPlan,
  type ModalityData,
  type ModalityTruth,
  type ModalityPipeline,
  type ModalityEvaluation,
  type ModalityEvaluationArgs,
} from "./pretrain/modality";
// Lab 01 — the windowed Q-Former (Blip2QFormerConfig.encoderWindow): each cross-attention key/value is a patch's
// neighbourhood.
export { qformerImageContext, resolveBlip2QFormerConfig, type Blip2QFormerConfig } from "./models/blip2";
