"""The one chat-model client of the build pipeline (synthesis and LLM translation).

Two backends behind the ``ChatBackend`` protocol:

- ``OpenAIChat``: any server speaking the OpenAI chat-completions API (OpenAI itself,
  vLLM, llama.cpp ``llama-server``, Ollama's /v1), through the official ``openai`` client;
- ``personalign.build.local_llm.LocalChat``: a GGUF model run in-process by xllamacpp.

What every caller shares lives here, once:

- configuration: base URL = argument, else env ``PERSONALIGN_LLM_BASE_URL``, else env
  ``OPENAI_BASE_URL``, else OpenAI's endpoint; API key = argument, else env
  ``OPENAI_API_KEY``; a custom base URL without a key gets the placeholder "EMPTY";
- retries: transient failures (HTTP 408, 409, 429, 5xx, time-outs, refused connections)
  are retried with exponential back-off: wait_k = min(max_delay_s, base_delay_s * 2**k)
  seconds before retry k = 0, 1, ..., or the server's Retry-After when that is longer
  (capped likewise). The ``openai`` client's own retries are off, so this is the only
  retry policy. Other HTTP errors (400, 401, 403, 404, ...) are not retried;
- rate limiting: at most ``requests_per_minute`` request starts per minute, retries
  included: request starts are spaced at least 60 / requests_per_minute seconds apart,
  across all threads sharing the client;
- strict JSON replies with one repair: ``complete_json`` parses the reply with a strict
  parser; a malformed reply is answered once with a repair request quoting the problem;
  a second malformed reply raises ``LLMRejected`` carrying the reason;
- bounded concurrency: ``run_bounded`` runs calls on at most ``concurrency`` threads;
- secrets: the API key is never in ``identity()``, ``repr``, log records or exception
  messages (``redact`` replaces it in any text that could echo it, such as a server's
  error message), and exceptions of the ``openai`` client (which may quote it) are never
  chained to ours.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from personalign.models.base import ModelUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")

BASE_URL_ENV = ("PERSONALIGN_LLM_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = frozenset({408, 409, 429})
REDACTED = "***"

Message = dict[str, str]


class LLMError(RuntimeError):
    """A request failed for good (retries spent, or refused by the server)."""


class LLMRejected(LLMError):
    """The model answered, but its reply was unusable even after one repair request.

    ``reason`` says what was wrong with the last reply.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LLMUnavailable(ModelUnavailable):
    """The chat model or its runtime cannot be had here; the message says how."""


class MalformedReply(ValueError):
    """A reply that does not follow the caller's contract (the message is the reason)."""


@dataclass(frozen=True)
class ChatReply:
    """The first choice of a chat completion."""

    content: str | None
    finish_reason: str | None


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model. ``chat`` returns the first choice of one completion; per-call
    ``temperature``/``seed``/``max_tokens`` override the backend's defaults (None keeps
    them); ``json_schema`` asks for a reply constrained to that JSON schema where the
    backend can enforce it (a grammar for local models; JSON mode for servers), and is a
    hint otherwise: replies are always parsed strictly by the caller. ``identity()`` is
    JSON-able, holds no secret, and names everything besides the messages that decides the
    reply. ``redact`` removes secrets from a text."""

    name: str
    backend: str
    model: str

    def identity(self) -> dict[str, Any]: ...

    def chat(
        self,
        messages: list[Message],
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatReply: ...

    def redact(self, text: str) -> str: ...


# --------------------------------------------------------------------------------------
# parsing helpers


def require_complete(reply: ChatReply) -> str:
    """The reply's text; MalformedReply when it was cut off by the token limit or empty."""
    if reply.finish_reason == "length":
        raise MalformedReply("the reply was cut off by the token limit (raise max_tokens or "
                             "ask for less)")
    if reply.content is None or not reply.content.strip():
        raise MalformedReply("the reply was empty")
    return reply.content


def parse_json_object(reply: ChatReply, keys: Sequence[str]) -> dict[str, Any]:
    """The reply as a JSON object with exactly the keys ``keys`` (any order).

    Strict: the whole reply (surrounding whitespace allowed) must be one JSON object; no
    Markdown fence, no prose, no missing or extra key.
    """
    content = require_complete(reply)
    try:
        obj = json.loads(content)
    except json.JSONDecodeError as err:
        raise MalformedReply(
            f"the reply is not a JSON document ({err.msg} at character {err.pos})"
        ) from None
    wanted = sorted(keys)
    if not isinstance(obj, dict) or sorted(obj) != wanted:
        names = ", ".join(f'"{k}"' for k in wanted)
        raise MalformedReply(f"the reply must be a JSON object with exactly the keys {names}")
    return obj


def sanitize_url(url: str) -> str:
    """The URL without user info, query or fragment (where credentials could hide) and
    without a trailing slash."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def resolve_endpoint(base_url: str | None, api_key: str | None) -> tuple[str | None, str]:
    """(base URL or None for OpenAI's, API key) from the arguments and the environment.

    Raises LLMUnavailable when no key is set and no custom base URL is given.
    """
    url = base_url or next((os.environ[k] for k in BASE_URL_ENV if os.environ.get(k)), None)
    key = api_key or os.environ.get(API_KEY_ENV) or None
    if key is None:
        if url is None:
            raise LLMUnavailable(
                f"no API key: set {API_KEY_ENV}, or point {BASE_URL_ENV[0]} at a local "
                "OpenAI-compatible server"
            )
        key = "EMPTY"
    return url, key


def redact_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***`` (secrets shorter
    than 4 characters, such as a placeholder, are left alone)."""
    if secret is None or len(secret) < 4:
        return text
    return text.replace(secret, REDACTED)


# --------------------------------------------------------------------------------------
# rate limiting and concurrency


class RateLimiter:
    """At most ``per_minute`` acquisitions per minute, spaced evenly.

    Acquisition k (k = 0, 1, ...) may start no earlier than t_0 + k * 60 / per_minute, where
    t_0 is the first acquisition; a caller that comes late does not earn a burst. Thread-safe:
    the slot is reserved under a lock, the wait happens outside it. ``per_minute`` None or
    <= 0 means no limit.
    """

    def __init__(self, per_minute: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        if self.interval == 0.0:
            return 0.0
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        wait = start - now
        if wait > 0:
            self.sleep(wait)
        return wait


def run_bounded(fn: Callable[[T], U], items: Sequence[T], concurrency: int) -> list[U]:
    """``[fn(x) for x in items]`` on at most ``concurrency`` threads, in input order.

    The first exception (in input order) is raised after cancelling calls not yet started.
    One item, or concurrency 1, runs in the calling thread.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if concurrency == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        futures = [pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


# --------------------------------------------------------------------------------------
# the OpenAI-compatible backend


class OpenAIChat:
    """An OpenAI-compatible chat-completions server.

    Args:
        model: the model name the server expects.
        base_url / api_key: see the module docstring for the environment fallbacks.
        temperature: default sampling temperature.
        seed: default seed, sent to servers that support it (None: not sent).
        max_tokens: default completion token limit (None: the server's).
        json_mode: send ``response_format={"type": "json_object"}`` when the caller asks
            for JSON (turn off for servers that reject it; replies are parsed strictly
            either way).
        timeout_s: per-request time-out.
        max_retries: retries of a transient failure per request.
        base_delay_s, max_delay_s: back-off (see the module docstring).
        requests_per_minute: rate limit shared by all threads using this client (None: none).
        name: how logs and errors name this client (default ``llm:<model>``).
    """

    backend = "llm-openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        json_mode: bool = True,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        requests_per_minute: float | None = None,
        name: str | None = None,
    ) -> None:
        try:
            from openai import OpenAI
        except ImportError:
            raise LLMUnavailable("the openai client is not installed: pip install "
                                 "'personalign[build]'") from None

        url, key = resolve_endpoint(base_url, api_key)
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self._api_key = key
        self._client = OpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout_s)
        self.model = model
        self.name = name or f"llm:{model}"
        self.base_url = sanitize_url(str(self._client.base_url))
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.requests_per_minute = requests_per_minute
        # Replaceable in tests: the back-off waits go through ``sleep``.
        self.sleep: Callable[[float], None] = time.sleep
        self.limiter = RateLimiter(requests_per_minute, sleep=lambda s: self.sleep(s))

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # The client holds the key and a connection pool: neither is pickled. A copy sent
        # to another process (a Ray worker) reads the key from its own environment.
        raise TypeError("OpenAIChat is not picklable; pass its settings and build it where "
                        "it is used")

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            "versions": package_versions("openai"),
        }

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the API key replaced by ``***``."""
        return redact_secret(text, self._api_key)

    def chat(
        self,
        messages: list[Message],
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatReply:
        """One chat completion, with retries (see the module docstring)."""
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model, "messages": messages,
            "temperature": self.temperature if temperature is None else temperature,
        }
        seed = self.seed if seed is None else seed
        if seed is not None:
            kwargs["seed"] = seed
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if json_schema is not None and self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        attempt = 0
        while True:
            status: int | None = None
            message = ""
            self.limiter.acquire()
            try:
                response = self._client.chat.completions.create(**kwargs)
            except (openai.APITimeoutError, openai.APIConnectionError) as err:
                problem, retry_after = type(err).__name__, None
            except openai.APIStatusError as err:
                status, message = err.status_code, str(err.message)
                problem, retry_after = f"HTTP {status}", _retry_after(err)
            else:
                if not response.choices:
                    return ChatReply(None, None)
                choice = response.choices[0]
                return ChatReply(choice.message.content, choice.finish_reason)
            if status is not None and status not in RETRY_STATUS and status < 500:
                # Raised outside the except block: the client's exception (whose message
                # may quote the key back) does not even ride along as __context__.
                raise LLMError(
                    f"{self.name}: the server at {self.base_url} refused the request "
                    f"(HTTP {status}): {self.redact(message)}"
                )
            if attempt >= self.max_retries:
                raise LLMError(
                    f"{self.name}: request to {self.base_url} failed {attempt + 1} times, "
                    f"last with {problem}; check the server or raise max_retries"
                )
            delay = min(self.max_delay_s, self.base_delay_s * 2**attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_delay_s))
            log.warning("%s: %s; retry %d/%d in %.2f s", self.name, problem, attempt + 1,
                        self.max_retries, delay)
            self.sleep(delay)
            attempt += 1


def _retry_after(err: Any) -> float | None:
    """Seconds from a Retry-After header in seconds form, if any."""
    try:
        value = err.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


# --------------------------------------------------------------------------------------
# strict JSON with one repair


def complete_json(
    backend: ChatBackend,
    messages: list[Message],
    parse: Callable[[ChatReply], T],
    repair: Callable[[str], str],
    *,
    what: str,
    temperature: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    json_schema: dict[str, Any] | None = None,
) -> T:
    """Ask, parse strictly, and on a malformed reply ask once more.

    ``parse`` turns a reply into the result or raises MalformedReply (its message is the
    reason); ``repair(reason)`` is the user message of the repair request, sent after the
    model's own malformed reply. A second malformed reply raises LLMRejected whose message
    names ``what`` was asked and whose ``reason`` is the second problem (redacted).
    Transport failures raise LLMError from ``backend.chat``.
    """
    options: dict[str, Any] = {"temperature": temperature, "seed": seed,
                               "max_tokens": max_tokens, "json_schema": json_schema}
    reply = backend.chat(messages, **options)
    try:
        return parse(reply)
    except MalformedReply as first:
        log.warning("%s: malformed reply (%s); asking once for a repair", backend.name,
                    backend.redact(str(first)))
        retry = [*messages,
                 {"role": "assistant", "content": reply.content or ""},
                 {"role": "user", "content": repair(str(first))}]
    reply = backend.chat(retry, **options)
    try:
        return parse(reply)
    except MalformedReply as second:
        reason = backend.redact(str(second))
    raise LLMRejected(
        f"{backend.name} gave no usable reply for {what} after one repair request: {reason}",
        reason,
    )


# --------------------------------------------------------------------------------------
# building a backend from plain settings (what configuration files and Ray workers pass)


@dataclass(frozen=True)
class ChatSpec:
    """Settings of a chat backend, without secrets: what a config file names and what is
    sent to worker processes, which build the backend themselves (``make_chat``) and read
    the API key from their own environment.

    ``backend``: "openai" (any OpenAI-compatible server) or "local" (a GGUF file run by
    xllamacpp). ``model``: the server's model name (openai) or the .gguf path (local; None:
    the packaged SmolLM2). ``options``: keyword arguments of ``OpenAIChat`` or
    ``LocalChat`` (e.g. ``timeout_s``, ``requests_per_minute``, ``n_threads``); an
    ``api_key`` option is refused, so that a key never lands in a config or a pickle.
    """

    backend: str = "openai"
    model: str | None = "gpt-4o-mini"
    options: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def make(backend: str = "openai", model: str | None = None, **options: Any) -> ChatSpec:
        if backend not in ("openai", "local"):
            raise ValueError(f"unknown chat backend {backend!r}; use 'openai' or 'local'")
        if "api_key" in options:
            raise ValueError(f"do not put the API key in settings; set {API_KEY_ENV}")
        if backend == "openai" and model is None:
            model = "gpt-4o-mini"
        return ChatSpec(backend, model, tuple(sorted(options.items())))


def make_chat(spec: ChatSpec) -> ChatBackend:
    """The backend ``spec`` describes (raises LLMUnavailable when it cannot be had)."""
    options = dict(spec.options)
    if spec.backend == "local":
        from personalign.build.local_llm import LocalChat

        return LocalChat(spec.model, **options)
    return OpenAIChat(spec.model or "gpt-4o-mini", **options)


class SecretFilter(logging.Filter):
    """A logging filter that replaces the API key (env ``OPENAI_API_KEY``, read when the
    filter is made, plus ``secrets``) in every record's message by ``***``: a second line of
    defence for log handlers of the build commands, whatever a library logs."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        env = os.environ.get(API_KEY_ENV)
        self.secrets = [s for s in (*secrets, env) if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = message
            for secret in self.secrets:
                clean = clean.replace(secret, REDACTED)
            if clean != message:
                record.msg, record.args = clean, None
        return True
