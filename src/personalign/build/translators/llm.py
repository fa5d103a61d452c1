"""Translation by an LLM behind an OpenAI-compatible chat-completions server.

Works with OpenAI itself and with local servers that speak the same API (vLLM, llama.cpp
``llama-server``, xllamacpp, Ollama's /v1). Configuration:

- base URL: argument ``base_url``, else env ``PERSONALIGN_LLM_BASE_URL``, else env
  ``OPENAI_BASE_URL``, else OpenAI's own endpoint;
- API key: argument ``api_key``, else env ``OPENAI_API_KEY``; a custom base URL without a
  key gets the placeholder "EMPTY" (local servers ignore it).

One request translates a batch of texts. The system prompt asks for a JSON object
``{"translations": [...]}`` with exactly one string per input, in order; the reply is
parsed strictly (a JSON object with that single key, a list of the right length, strings,
non-empty for non-blank inputs, not cut off by the token limit). A malformed reply is
answered once with a repair request that quotes the problem; a second malformed reply
raises TranslationRejected with the reason.

Transient failures (HTTP 408, 409, 429, 5xx, time-outs, refused connections) are retried
with exponential back-off: wait_k = min(max_delay_s, base_delay_s * 2**k) seconds before
retry k = 0, 1, ..., or the server's Retry-After when that is longer (capped likewise); the
client's own retries are switched off so this is the only retry policy. Batches run on at
most ``concurrency`` threads.

The API key never leaves the client: it is not in ``identity()``, ``repr``, log records or
exception messages (any text that could echo it is redacted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from personalign.build.translators.base import (
    TranslationError,
    TranslationRejected,
    TranslatorUnavailable,
    check_pair,
    library_versions,
)
from personalign.languages import BY_CODE

log = logging.getLogger(__name__)

BASE_URL_ENV = ("PERSONALIGN_LLM_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = frozenset({408, 409, 429})

SYSTEM_PROMPT = (
    "You are a professional translator. Translate every text in the user's JSON message "
    "from {src_name} into {tgt_name}, written in the {script} script. Keep the meaning, "
    "register, names, numbers and formatting; translate each text completely; add no "
    "notes, explanations or transliterations; never merge or split texts.\n"
    'Reply with only a JSON object of the form {{"translations": ["...", "..."]}}: one '
    "translated string per input text, in the same order, and nothing else."
)
REPAIR_PROMPT = (
    "Your reply was not accepted: {reason}. Reply again with only the JSON object "
    '{{"translations": [...]}} holding exactly {count} strings, one translation per '
    "input text, in order."
)
PROMPT_VERSION = hashlib.sha256((SYSTEM_PROMPT + REPAIR_PROMPT).encode("utf-8")).hexdigest()[:12]


class MalformedReply(ValueError):
    """A reply that does not follow the JSON contract (the message is the reason)."""


def parse_translations(
    content: str | None, texts: list[str], finish_reason: str | None
) -> list[str]:
    """The translations in a reply, or MalformedReply saying what is wrong with it.

    Accepted: exactly a JSON object ``{"translations": [s_1, ..., s_n]}`` (surrounding
    whitespace allowed) with n = len(texts), every s_i a string, non-blank when text i is.
    """
    n = len(texts)
    if finish_reason == "length":
        raise MalformedReply("the reply was cut off by the token limit (raise max_tokens or "
                             "send smaller batches)")
    if content is None or not content.strip():
        raise MalformedReply("the reply was empty")
    try:
        obj = json.loads(content)
    except json.JSONDecodeError as err:
        raise MalformedReply(
            f"the reply is not a JSON document ({err.msg} at character {err.pos})"
        ) from None
    if not isinstance(obj, dict) or list(obj) != ["translations"]:
        raise MalformedReply('the reply must be a JSON object with the single key "translations"')
    items = obj["translations"]
    if not isinstance(items, list):
        raise MalformedReply('"translations" must be a list of strings')
    if len(items) != n:
        raise MalformedReply(f'"translations" has {len(items)} items for {n} input texts')
    for i, (item, text) in enumerate(zip(items, texts, strict=True)):
        if not isinstance(item, str):
            raise MalformedReply(f'item {i + 1} of "translations" is not a string')
        if text.strip() and not item.strip():
            raise MalformedReply(f'item {i + 1} of "translations" is empty')
    return [str(item) for item in items]


def sanitize_url(url: str) -> str:
    """The URL without user info, query or fragment (where credentials could hide) and
    without a trailing slash."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class LLMTranslator:
    """An OpenAI-compatible chat model as a translator.

    Args:
        model: the model name the server expects.
        base_url / api_key: see the module docstring for the environment fallbacks.
        batch_size: texts per request.
        concurrency: most requests in flight at once.
        temperature: sampling temperature (0 = as deterministic as the server allows).
        seed: passed to servers that support it.
        max_tokens: completion token limit per request (None: the server's default).
        json_mode: ask for ``response_format={"type": "json_object"}`` (turn off for
            servers that reject it; the reply is parsed strictly either way).
        timeout_s: per-request time-out.
        max_retries: retries of a transient failure per request.
        base_delay_s, max_delay_s: back-off (see the module docstring).
    """

    backend = "llm-openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 8,
        concurrency: int = 4,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        json_mode: bool = True,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
    ) -> None:
        from openai import OpenAI

        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be >= 1")
        url = base_url or next((os.environ[k] for k in BASE_URL_ENV if os.environ.get(k)), None)
        key = api_key or os.environ.get(API_KEY_ENV) or None
        if key is None:
            if url is None:
                raise TranslatorUnavailable(
                    f"no API key: set {API_KEY_ENV}, or point {BASE_URL_ENV[0]} at a local "
                    "OpenAI-compatible server"
                )
            key = "EMPTY"
        self._api_key = key
        self._client = OpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout_s)
        self.model = model
        self.base_url = sanitize_url(str(self._client.base_url))
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.name = f"llm:{model}"
        # Replaceable in tests; the back-off waits go through it.
        self.sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"LLMTranslator(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "base_url": self.base_url,
            "prompt_version": PROMPT_VERSION,
            "batch_size": self.batch_size,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            "versions": library_versions("openai"),
        }

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the API key replaced by ``***``."""
        return text.replace(self._api_key, "***") if len(self._api_key) >= 4 else text

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        src, tgt = check_pair(src, tgt)
        system = SYSTEM_PROMPT.format(
            src_name=BY_CODE[src].name, tgt_name=BY_CODE[tgt].name,
            script=BY_CODE[tgt].script_name,
        )
        # Blank texts are not sent (as with the other backends) and come back as "".
        todo = [i for i, text in enumerate(texts) if text.strip()]
        batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        out = [""] * len(texts)
        if not batches:
            return out
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
            futures = [
                pool.submit(self._translate_batch, system, [texts[i] for i in idx])
                for idx in batches
            ]
            try:
                for idx, future in zip(batches, futures, strict=True):
                    for i, text in zip(idx, future.result(), strict=True):
                        out[i] = text
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return out

    def _translate_batch(self, system: str, texts: list[str]) -> list[str]:
        user = json.dumps({"count": len(texts), "texts": texts}, ensure_ascii=False)
        messages: list[dict[str, str]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        content, finish = self._complete(messages)
        try:
            return parse_translations(content, texts, finish)
        except MalformedReply as first:
            log.warning("%s: malformed reply (%s); asking once for a repair", self.name, first)
            messages += [
                {"role": "assistant", "content": content or ""},
                {"role": "user", "content": REPAIR_PROMPT.format(reason=first, count=len(texts))},
            ]
        content, finish = self._complete(messages)
        try:
            return parse_translations(content, texts, finish)
        except MalformedReply as second:
            reason = self.redact(str(second))
            raise TranslationRejected(
                f"{self.name} gave no usable translation for a batch of {len(texts)} texts "
                f"after one repair request: {reason}",
                reason,
            ) from None

    def _complete(self, messages: list[dict[str, str]]) -> tuple[str | None, str | None]:
        """One chat completion with retries; returns (content, finish_reason)."""
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "temperature": self.temperature}
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        attempt = 0
        while True:
            status: int | None = None
            message = ""
            try:
                response = self._client.chat.completions.create(**kwargs)
            except (openai.APITimeoutError, openai.APIConnectionError) as err:
                problem, retry_after = type(err).__name__, None
            except openai.APIStatusError as err:
                status, message = err.status_code, str(err.message)
                problem, retry_after = f"HTTP {status}", _retry_after(err)
            else:
                if not response.choices:
                    return None, None
                choice = response.choices[0]
                return choice.message.content, choice.finish_reason
            if status is not None and status not in RETRY_STATUS and status < 500:
                # Raised outside the except block: the client's exception (whose message
                # may quote the key back) does not even ride along as __context__.
                raise TranslationError(
                    f"{self.name}: the server at {self.base_url} refused the request "
                    f"(HTTP {status}): {self.redact(message)}"
                )
            if attempt >= self.max_retries:
                raise TranslationError(
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
