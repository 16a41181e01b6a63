"""
Embedded OpenAI-compatible model server: serves one Hugging Face base checkpoint, and LoRA adapters on
it, on loopback, so the Code-A1 pipeline runs on a machine without a GPU or a hub. Real runs point the
same client config at vLLM instead (README, "Embedded model server"); the adapter routes follow the
vLLM OpenAI server's runtime LoRA API (`--enable-lora` with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True).

    python python/model_server.py --checkpoint DIR --model-name NAME --port 8000 [--max-loras 4]

It also answers the routes through which vLLM and SGLang take new weights, with their request and
response shapes, so that the pipeline's publishing code for each runs against a real process in CI.

Routes (errors in OpenAI's shape {"error": {message, type, param, code}} unless said otherwise)
    GET  /health                    liveness, counters, the dtype, the loaded adapters' names, paused,
                                    held_sequences (taken from the queue and held by a pause),
                                    prefix_cache_resets, faults
    GET  /v1/models                 the base model, then one card per adapter:
                                    {id, object: "model", root, parent: base name or null,
                                     checkpoint: {path, version, fingerprint}}; an adapter's version is
                                    the server's count of adapter loads at its load
    GET  /v1/models/NAME            one card
    POST /v1/chat/completions       messages, n, temperature, top_p, max_tokens, seed, stop, logprobs,
                                    top_logprobs (0-20, only with logprobs: else 400), ignore_eos (as
                                    vLLM's: the end-of-turn token does not end a choice; needs
                                    max_tokens; for benchmarks of fixed length); "model" is the
                                    base's name (no adapter) or a loaded adapter's; else 404
                                    model_not_found
    POST /v1/load_checkpoint        {"path": DIR}: swap in new base weights without restarting; the
                                    loaded adapters are re-applied to the new base (fingerprints change
                                    with the base version); 200 {model, path, version}; 400 and nothing
                                    changes when the directory or one of the adapters does not load on it
    POST /v1/load_lora_adapter      {"lora_name", "lora_path": DIR}: a peft LoRA directory
                                    (adapter_config.json, adapter_model.safetensors); 200 with its card;
                                    400 when the name is taken (vLLM does the same: check /v1/models
                                    first), --max-loras are loaded, or the directory does not load
                                    (missing, modules or shapes the base lacks, non-finite logits on a
                                    one-token probe); whatever was loaded keeps serving
    POST /v1/unload_lora_adapter    {"lora_name"}: 200 {id, object: "model", deleted: true}; 404 for a
                                    name that is not loaded. Waits for the batch in flight; queued
                                    requests for the adapter then fail with 404 model_not_found
  vLLM's development routes (VLLM_SERVER_DEV_MODE=1 there)
    POST /collective_rpc            {"method": "reload_weights", "kwargs": {"weights_path": DIR}}:
                                    reloads as /v1/load_checkpoint does; 200 {"results": [null]} (one
                                    result per worker); without kwargs it re-reads the directory served
                                    now, as vLLM releases before 2026 do. 400 for another method (the
                                    message names reload_weights) or positional args; 500 when the
                                    reload fails or a keyword is not taken (vLLM answers a worker's
                                    exception so: "TypeError: reload_weights() got an unexpected
                                    keyword argument '...'")
    POST /reset_prefix_cache        200 {"success": true}; there is no prefix cache to reset; counted
    POST /pause?mode=abort|wait|keep  200 {"status": "paused"}; new batches wait for /resume. abort
                                    (vLLM's default; also wait_for_inflight_requests=true means wait):
                                    requests submitted before end now, in flight after their next
                                    token, with finish_reason "abort"; wait: answers once the batch in
                                    flight finished; keep: answers at once, the batch in flight still
                                    finishes (vLLM freezes it). 400 for another mode
    POST /resume                    200 {"status": "resumed"}
    GET  /is_paused                 {"is_paused": bool}
  SGLang's routes (failures: HTTP 400 {"success": false, "message", ...})
    POST /update_weights_from_disk  {"model_path": DIR, "weight_version"?, "flush_cache"?,
                                    "load_format"? (auto, safetensors), "abort_all_requests"?}: reloads
                                    as /v1/load_checkpoint does, then labels the weights with
                                    weight_version if given; 200 {"success": true, "message",
                                    "num_paused_requests": 0}; on failure 400 with success false and
                                    num_paused_requests, and the old weights keep serving.
                                    abort_all_requests ends the requests in flight and queued first
    GET  /model_info                {"model_path": the directory served now, "tokenizer_path",
    GET  /get_model_info             "is_generation": true, "preferred_sampling_params": null,
                                     "weight_version": the last label ("default" at start),
                                     "served_model_name"}
    POST /update_weight_version     {"new_version", "abort_all_requests"?}: 200 {"success": true,
                                    "message", "new_version"}
    POST /load_lora_adapter         {"lora_name", "lora_path"}, as /v1/load_lora_adapter; 200
                                    {"success": true, "message", "error_message": null,
                                     "loaded_adapters": {name: path}}; 400 with success false and
                                    error_message (and message) on failure
    POST /unload_lora_adapter       {"lora_name"}, as /v1/unload_lora_adapter; answers as above
    POST /pause_generation          {"mode"?: "abort" (default) | "retract" | "in_place"}: /pause in
                                    mode abort, wait (the batch in flight finishes instead of going back
                                    to the queue) or keep; 200 {"message", "status": "ok"}
    POST /continue_generation       /resume; 200 {"message", "status": "ok"}

Log-probabilities (logprobs: true), as vLLM returns them: choices[i].logprobs = {"content": [{"token",
"logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}, ...]}, ...]}, one entry per
token of token_ids (the end-of-turn token included). The log-probability is that of the raw model
distribution, log_softmax of the logits before temperature and top_p (vLLM's default
"raw_logprobs"), in float32 whatever --dtype; `token` is tokenizer.decode([id]) and `bytes` its
UTF-8. Without logprobs the field is null, and the request costs no log_softmax.

Faults, for tests only (--fault NAME, repeatable): known failures of real servers, emulated so that
the publishing code's checks can be shown to catch them.
    ignore-reloads          every weight change (/v1/load_checkpoint, /collective_rpc reload_weights,
                            /update_weights_from_disk, both /load_lora_adapter routes) answers as on
                            success, and /v1/models, /model_info and weight_version report the new path
                            and version, but the weights served do not change (an adapter loaded so
                            is served as the base weights). Only comparing log-probabilities catches it
    reload-without-path     /collective_rpc reload_weights with kwargs weights_path answers 500 "TypeError:
                            reload_weights() got an unexpected keyword argument 'weights_path'", as vLLM
                            releases whose reload_weights takes no path do

Extensions to the OpenAI response (the same names vLLM uses for `return_token_ids`), returned
unless the request sets "return_token_ids": false:
    prompt_token_ids            the rendered prompt's token ids, exactly what the model was fed
    choices[i].token_ids        every sampled token id, including the end-of-turn token or the
                                tokens that completed a stop string; message.content is their text
                                with special tokens dropped and cut before the stop string
    system_fingerprint          which weights answered: "ckpt-<server>-v<version>" for the base,
                                "ckpt-<server>-v<base version>-<lora_name>-a<load>" for an adapter
                                (equal to its card's fingerprint). <server> is random per process, so
                                a client can tell its initial weights from a restarted server's

Seeds: choice i of a request with seed s samples from its own torch.Generator seeded from (s, i),
drawing one uniform number per token. The same request with the same seed therefore draws the same
random numbers whatever else is in the batch, and yields the same tokens when the model computes the
same logits. Logits can differ in the last bits when a request shares a batch (other padding, other
matrix shapes, other adapters), which flips a sample only at a near tie. Without a seed each choice
draws a fresh one.

Linear layers: a float32 model on CPU computes them with weights packed once for oneDNN
(serving/packed_linear.py), not through MKL's sgemm, which re-packs every weight on every call.

Batching: sequences (n per request) wait in a queue until none has come for batch_wait_ms (at most
max_batch_wait_ms after the first); the scheduler thread decodes up to max_batch of them together
(left padding, one KV cache; on CPU each distinct prompt is prefilled from the longest prefix it
shares with one before it, serving/decoding.py), drops finished rows from the batch, and takes the
next batch when this one is done. Rows of one batch may use different adapters
(serving/adapters.py says how). A reload swaps the weights between batches, so a batch in flight
finishes on the weights it started with.

Layout: serving/engine.py loads base checkpoints (in the dtype that dtypes.py picks for the trainer too),
serving/adapters.py LoRA adapters, serving/packed_linear.py the packed float32 linear layers,
serving/attention.py the CPU attention of decode steps, serving/chat.py
parses requests and writes responses, serving/decoding.py samples and decodes a batch (and computes
log-probabilities), serving/scheduler.py batches and pauses, serving/routes.py is the HTTP side.
"""
import argparse
import logging
import os
import signal
import threading
from pathlib import Path

# The server never downloads anything; set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# torch's OpenMP threads (libgomp) spin up to 300,000 times between parallel regions before they
# sleep. Next to one busy process on 2 cores, that spinning made decoding 6-10x slower than idle;
# 10,000 spins still bridge the short gaps of a decode step (as fast as the default when the CPU is
# idle) and halve the loss when it is not. Not spinning at all (OMP_WAIT_POLICY=PASSIVE) cost a
# third of the idle speed. Measured, README; read once, when torch loads OpenMP.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import torch  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from serving.config import FAULTS, ServerConfig  # noqa: E402
from serving.engine import load_engine  # noqa: E402
from serving.routes import Server  # noqa: E402
from serving.scheduler import Scheduler  # noqa: E402

log = logging.getLogger("model_server")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Embedded OpenAI-compatible model server")
    defaults = ServerConfig(checkpoint="")
    parser.add_argument("--checkpoint", required=True, help="Hugging Face checkpoint directory")
    parser.add_argument("--model-name", default=defaults.model_name)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    parser.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_ms,
                        help="a batch starts once no sequence has joined it for this long")
    parser.add_argument("--max-batch-wait-ms", type=float, default=defaults.max_batch_wait_ms,
                        help="or this long after its first sequence came")
    parser.add_argument("--max-loras", type=int, default=defaults.max_loras)
    parser.add_argument("--dtype", default=defaults.dtype, choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS),
                        help="for tests only: emulate a known failure of real servers (docstring, Faults)")
    args = parser.parse_args(argv)
    cfg = ServerConfig(checkpoint=args.checkpoint, model_name=args.model_name, host=args.host, port=args.port,
                       max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
                       max_batch_wait_ms=args.max_batch_wait_ms, max_loras=args.max_loras,
                       dtype=args.dtype, threads=args.threads, faults=tuple(args.fault))
    assert cfg.max_batch >= 1, "--max-batch must be at least 1"
    assert cfg.max_loras >= 0, "--max-loras must not be negative"

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hf_logging.disable_progress_bar()
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    torch.set_num_interop_threads(1)  # one model call at a time: inter-op parallelism only oversubscribes

    engine = load_engine(str(Path(cfg.checkpoint).resolve()), 1, cfg.dtype, cfg.max_loras)
    server = Server(cfg, Scheduler(cfg, engine))
    host, port = server.server_address[:2]
    # shutdown() blocks until serve_forever returns, so it must run on another thread.
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if cfg.faults:
        log.warning("emulating faults for tests: %s", ", ".join(cfg.faults))
    log.info("serving %s at http://%s:%d/v1", cfg.model_name, host, port)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
