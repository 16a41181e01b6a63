import type { Sample } from '../records.js';
import type { ChatChoice, ChatCompletion } from './chat-client.js';
import type { RenderedPrompt } from './prompts.js';

/** The part of a rollout every stage records the same way: exactly what was asked and sampled. */
export function toSample(
  prompt: RenderedPrompt,
  completion: ChatCompletion,
  choice: ChatChoice,
  checkpoint: string,
  origin?: { endpoint: string; servedModel: string },
): Sample {
  return {
    messages: prompt.messages,
    response: choice.text,
    finishReason: choice.finishReason,
    truncated: choice.finishReason === 'length',
    promptTokens: completion.promptTokens,
    completionTokens: choice.completionTokens,
    ...(completion.promptTokenIds ? { promptTokenIds: completion.promptTokenIds } : {}),
    ...(choice.tokenIds ? { responseTokenIds: choice.tokenIds } : {}),
    promptVersion: prompt.version,
    checkpoint,
    ...origin,
  };
}

/**
 * What a request whose prompt does not fit the model's context yields: `n` empty 'error'
 * samples, so the problem keeps its group shape and scores as "no code" / "no tests" rather
 * than stopping the whole stage.
 */
export function failedCompletion(n: number): ChatCompletion {
  return { choices: Array.from({ length: n }, () => ({ text: '', finishReason: 'error', completionTokens: 0 })), promptTokens: 0 };
}

/** Counters every generation stage reports. */
export function sampleCounts(samples: Sample[]): Record<string, number> {
  let truncated = 0;
  let errors = 0;
  let empty = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  for (const s of samples) {
    if (s.truncated) truncated++;
    if (s.finishReason === 'error') errors++;
    if (s.response.trim() === '') empty++;
    promptTokens += s.promptTokens;
    completionTokens += s.completionTokens;
  }
  return { samples: samples.length, truncated, errors, emptyResponses: empty, promptTokens, completionTokens };
}
