/**
 * Records stored in object storage between stages. Stage outputs are manifests that list shard
 * keys; each shard is a JSON array of one of these records.
 */

/** One training or evaluation problem, normalised from any supported dataset shape. */
export interface Problem {
  questionId: string;
  /** The task text shown to both models. */
  description: string;
  /** Name of the function under test. */
  entryPoint: string;
  /** Complete, runnable reference solution (for HumanEval+ rows: header plus body). */
  gtCode: string;
  /** HumanEval-style header (signature and docstring), when the dataset has one. */
  prompt?: string;
  /** Golden test code defining `check(candidate)`; evaluation only, never used in training. */
  test?: string;
  /** Benchmark or set the row came from (e.g. `humaneval`, `mbpp`, `builtin`). */
  dataSource: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One sampled response, with what the trainer needs to train on exactly those tokens. */
export interface Sample {
  messages: ChatMessage[];
  response: string;
  finishReason: 'stop' | 'length' | 'error' | string;
  /** True when the response was cut at max tokens. */
  truncated: boolean;
  promptTokens: number;
  completionTokens: number;
  promptTokenIds?: number[];
  responseTokenIds?: number[];
  /** Version of the prompt template that rendered `messages`. */
  promptVersion: string;
  /** Checkpoint that produced the sample. */
  checkpoint: string;
  /** The server that answered (its base URL) and the model name the request carried (a LoRA adapter's versioned name). */
  endpoint?: string;
  servedModel?: string;
}

export interface CodeRollout extends Sample {
  questionId: string;
  candidateIndex: number;
  /** Code extracted from the response, or null when it holds no code block. */
  code: string | null;
}

export interface TestRollout extends Sample {
  questionId: string;
  candidateIndex: number;
  responseIndex: number;
  /** Assert statements extracted from the response, in order, before any validation. */
  asserts: string[];
  nonprintableRatio: number;
}

export interface Manifest {
  shards: string[];
  count: number;
}
