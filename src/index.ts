/**
 * mllm-labs: the shared library of the multimodal LLM labs.
 *
 * Grouped exports; the notebooks import this module by package name:
 *   import { initEngine, nn } from "mllm-labs";
 */
export { initEngine, engineInfo, type BackendName, type EngineArgs, type EngineInfo } from "./engine/init";
