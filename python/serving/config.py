"""The server's settings and the one error type every layer raises."""
from dataclasses import dataclass


@dataclass
class ServerConfig:
    checkpoint: str  # Hugging Face checkpoint directory (config, tokenizer with chat template, weights)
    model_name: str = "smollm2-135m-instruct"  # the base model's name in requests and /v1/models
    host: str = "127.0.0.1"  # loopback: the server has no authentication
    port: int = 8000  # 0 picks a free port (logged on start)
    max_batch: int = 32  # sequences decoded together: Qwen2.5-0.5B on 2 cores, 128 tokens each, 131 tokens/s
    # for 16, 169 for 32, 237 for 64 (README); the KV cache takes 24 KB per token and row (float32, 24 layers)
    # A batch starts once no sequence has joined it for batch_wait_ms, or max_batch_wait_ms after its first
    # came. A burst of requests is parsed and tokenized one at a time (the GIL, the tokenizer's lock), so
    # its requests arrive milliseconds apart. A request that misses the batch waits for all of it, and
    # tens of milliseconds are nothing next to a batch's tens of seconds.
    batch_wait_ms: float = 50.0
    max_batch_wait_ms: float = 1000.0
    max_n: int = 128  # largest n per request
    max_top_logprobs: int = 20  # OpenAI's limit for top_logprobs (vLLM's default --max-logprobs is 20 too)
    max_loras: int = 4  # LoRA adapters loaded at once (vLLM's --max-loras, same default)
    dtype: str = "auto"  # auto: bfloat16 on CUDA and on CPUs that torch runs bf16 instructions on, else float32 (dtypes.py)
    threads: int = 0  # torch intra-op threads; 0 = all cores (HTTP threads mostly sleep)
    max_body_bytes: int = 16 << 20
    faults: tuple[str, ...] = ()  # for tests only: misbehaviours of real servers to emulate (FAULTS)


# Failures of real inference servers that the publishing code must detect; tests start a server with them.
FAULTS = {
    # every weight-change route answers as on success and the listings report the new weights, but the
    # weights served do not change (vLLM issue 32718: "a reload that answers 200 but keeps serving old
    # weights"); only comparing log-probabilities can tell
    "ignore-reloads",
    # /collective_rpc reload_weights takes no path, as in vLLM releases before 2026
    "reload-without-path",
}


class ApiError(Exception):
    """An error answered to the client in OpenAI's shape: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
