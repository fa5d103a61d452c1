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
most ``concurrency`` threads. Retries, back-off, rate limit, the repair round and redaction
are those of ``personalign.build.llm`` (shared with the synthesis stage).

The API key never leaves the client: it is not in ``identity()``, ``repr``, log records or
exception messages (any text that could echo it is redacted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from personalign.build.llm import (
    ChatReply,
    LLMError,
    LLMRejected,
    LLMUnavailable,
    MalformedReply,
    OpenAIChat,
    complete_json,
    require_complete,
    run_bounded,
    sanitize_url,
)
from personalign.build.translators.base import (
    TranslationError,
    TranslationRejected,
    TranslatorUnavailable,
    check_pair,
    library_versions,
)
from personalign.languages import BY_CODE

__all__ = ["LLMTranslator", "MalformedReply", "parse_translations", "sanitize_url"]

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
# Passed as the JSON-schema hint (JSON mode for servers, a grammar for local models).
TRANSLATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"translations": {"type": "array", "items": {"type": "string"}}},
    "required": ["translations"],
    "additionalProperties": False,
}


def parse_translations(
    content: str | None, texts: list[str], finish_reason: str | None
) -> list[str]:
    """The translations in a reply, or MalformedReply saying what is wrong with it.

    Accepted: exactly a JSON object ``{"translations": [s_1, ..., s_n]}`` (surrounding
    whitespace allowed) with n = len(texts), every s_i a string, non-blank when text i is.
    """
    n = len(texts)
    content = require_complete(ChatReply(content, finish_reason))
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
        requests_per_minute: rate limit over all of this translator's requests (None: none).

    The requests go through ``personalign.build.llm.OpenAIChat`` (retries, back-off, rate
    limit, redaction) and ``complete_json`` (strict parsing, one repair), the client the
    synthesis stage uses too.
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
        requests_per_minute: float | None = None,
    ) -> None:
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be >= 1")
        self.name = f"llm:{model}"
        unavailable: LLMUnavailable | None = None
        try:
            self.chat = OpenAIChat(
                model, base_url=base_url, api_key=api_key, temperature=temperature, seed=seed,
                max_tokens=max_tokens, json_mode=json_mode, timeout_s=timeout_s,
                max_retries=max_retries, base_delay_s=base_delay_s, max_delay_s=max_delay_s,
                requests_per_minute=requests_per_minute, name=self.name,
            )
        except LLMUnavailable as err:
            unavailable = err
        if unavailable is not None:
            raise TranslatorUnavailable(str(unavailable))
        self.model = model
        self.base_url = self.chat.base_url
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

    @property
    def sleep(self) -> Callable[[float], None]:
        """The back-off wait (replaceable in tests); the chat client's."""
        return self.chat.sleep

    @sleep.setter
    def sleep(self, value: Callable[[float], None]) -> None:
        self.chat.sleep = value

    def __repr__(self) -> str:
        return f"LLMTranslator(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        # Unchanged since the first release: a different identity would orphan checkpoints.
        # The rate limit is left out: it changes timing, not output.
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
        return self.chat.redact(text)

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
        done = run_bounded(lambda idx: self._translate_batch(system, [texts[i] for i in idx]),
                           batches, self.concurrency)
        for idx, got in zip(batches, done, strict=True):
            for i, text in zip(idx, got, strict=True):
                out[i] = text
        return out

    def _translate_batch(self, system: str, texts: list[str]) -> list[str]:
        user = json.dumps({"count": len(texts), "texts": texts}, ensure_ascii=False)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        failure: LLMError | None = None
        try:
            return self.complete(messages, texts)
        except LLMError as err:
            failure = err
        # Re-raised outside the except block, as our own type, with nothing chained.
        if isinstance(failure, LLMRejected):
            raise TranslationRejected(
                f"{self.name} gave no usable translation for a batch of {len(texts)} texts "
                f"after one repair request: {failure.reason}",
                failure.reason,
            )
        raise TranslationError(str(failure))

    def complete(self, messages: list[dict[str, str]], texts: list[str]) -> list[str]:
        """One strict-JSON request (with its one repair) for ``texts``."""
        return complete_json(
            self.chat, messages,
            lambda reply: parse_translations(reply.content, texts, reply.finish_reason),
            lambda reason: REPAIR_PROMPT.format(reason=reason, count=len(texts)),
            what=f"a batch of {len(texts)} texts", json_schema=TRANSLATIONS_SCHEMA,
        )
