"""NLLB-200 and M2M-100 through transformers (AutoModelForSeq2SeqLM + AutoTokenizer).

Both are M2M100ForConditionalGeneration checkpoints; they differ in how languages are
named and where the language token goes:

- NLLB-200 names languages with FLORES-200 codes, the same codes as
  ``personalign.languages`` (``"hin_Deva"``). The tokenizer puts the source code token in
  front of the text (``tokenizer.src_lang``); the target code token is forced as the first
  generated token (``forced_bos_token_id``).
- M2M-100 names languages with ISO 639-1 codes (``"hi"``) and tokens ``"__hi__"``
  (``tokenizer.get_lang_id``). It has no Assamese or Telugu: asking for them raises a
  ValueError naming the language.

Decoding is greedy when ``num_beams == 1`` and beam search otherwise, never sampling, so
a translator gives the same output for the same input and batch composition.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Literal

from personalign.build.translators.base import (
    check_pair,
    iso639_1,
    library_versions,
    load_pretrained,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
    translate_sorted,
)
from personalign.languages import BY_CODE

log = logging.getLogger(__name__)

Family = Literal["auto", "nllb", "m2m100"]


def detect_family(tokenizer: Any) -> Literal["nllb", "m2m100"]:
    """"m2m100" for an M2M-100 tokenizer (ISO 639-1 language ids), "nllb" for an NLLB one.

    Raises ValueError for any other tokenizer: pass ``family=`` explicitly then.
    """
    if hasattr(tokenizer, "get_lang_id") and hasattr(tokenizer, "lang_code_to_id"):
        return "m2m100"
    if type(tokenizer).__name__.lower().startswith("nllb"):
        return "nllb"
    raise ValueError(
        f"cannot tell the language-code scheme of tokenizer {type(tokenizer).__name__}; "
        "pass family='nllb' (FLORES codes such as hin_Deva) or family='m2m100' (ISO codes)"
    )


class LanguageTokens:
    """Maps personalign language codes to a tokenizer's language tokens.

    NLLB: token = the FLORES code itself. M2M-100: token = ``"__<iso639-1>__"``.
    """

    def __init__(self, tokenizer: Any, family: Family) -> None:
        self.tokenizer = tokenizer
        self.family: Literal["nllb", "m2m100"] = (
            detect_family(tokenizer) if family == "auto" else family
        )
        if self.family not in ("nllb", "m2m100"):
            raise ValueError(f"unknown family {family!r}; use 'auto', 'nllb' or 'm2m100'")

    def model_code(self, code: str) -> str:
        """The code the tokenizer's ``src_lang`` takes: FLORES for NLLB, ISO for M2M."""
        return code if self.family == "nllb" else iso639_1(code)

    def token(self, code: str) -> str:
        """The language token for ``code``; ValueError when the model lacks the language."""
        model_code = self.model_code(code)
        if self.family == "m2m100":
            known = getattr(self.tokenizer, "lang_code_to_id", {})
            if model_code not in known:
                raise ValueError(
                    f"this M2M-100 model has no language token for {BY_CODE[code].name} "
                    f"({model_code!r}); use NLLB-200 or IndicTrans2 for it"
                )
            return str(self.tokenizer.get_lang_token(model_code))
        token_id = self.tokenizer.convert_tokens_to_ids(model_code)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(
                f"this NLLB tokenizer has no language token {model_code!r} "
                f"({BY_CODE[code].name})"
            )
        return model_code

    def token_id(self, code: str) -> int:
        if self.family == "m2m100":
            self.token(code)  # validates
            return int(self.tokenizer.get_lang_id(self.model_code(code)))
        return int(self.tokenizer.convert_tokens_to_ids(self.token(code)))

    def language_ids(self) -> frozenset[int]:
        """Ids of language tokens to drop from generated output before decoding.

        M2M-100's tokenizer under transformers 5 marks its ``__xx__`` tokens as special only
        when the checkpoint's tokenizer config lists them, so ``skip_special_tokens`` alone
        can leave ``"__hi__"`` in the text; NLLB's codes are always special tokens.
        """
        if self.family == "m2m100":
            return frozenset(int(i) for i in self.tokenizer.lang_code_to_id.values())
        return frozenset()

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids, without language and other special tokens."""
        drop = self.language_ids()
        kept = [i for i in ids if i not in drop]
        return str(self.tokenizer.decode(kept, skip_special_tokens=True))

    def set_source(self, code: str) -> None:
        """Make the tokenizer put ``code``'s language token on the source side."""
        self.token(code)  # validates
        self.tokenizer.src_lang = self.model_code(code)


def warn_if_truncated(tokenizer: Any, texts: list[str], max_tokens: int, backend: str) -> None:
    """Log a warning when inputs are longer than ``max_tokens`` tokens (they get cut)."""
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    long = [n for n in lengths if n > max_tokens]
    if long:
        log.warning(
            "%s: %d of %d inputs are longer than max_input_tokens=%d (up to %d tokens) and are "
            "truncated; raise max_input_tokens or split the texts",
            backend, len(long), len(texts), max_tokens, max(long),
        )


class HFSeq2SeqTranslator:
    """NLLB-200 / M2M-100 through transformers.

    Args:
        model: a local folder or a hub id (``"facebook/nllb-200-3.3B"``).
        family: "auto" (from the tokenizer), "nllb" or "m2m100".
        device: "auto", "cpu", "cuda", "cuda:1", ...
        dtype: "auto" (float16 on CUDA, float32 on CPU), "float32", "float16", "bfloat16".
        num_beams: beam width; 1 = greedy.
        max_new_tokens: most tokens generated per text (the forced language token counts).
        max_input_tokens: inputs are cut to this many tokens (a warning says when).
        batch_size: texts per generate call (texts are sorted by length first).
    """

    backend = "hf-seq2seq"

    def __init__(
        self,
        model: str | Path,
        *,
        family: Family = "auto",
        device: str = "auto",
        dtype: str = "auto",
        num_beams: int = 4,
        max_new_tokens: int = 256,
        max_input_tokens: int = 512,
        batch_size: int = 16,
    ) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.model_id = str(model)
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.model_id, "tokenizer")
        self.lang = LanguageTokens(self.tokenizer, family)
        self.model = load_pretrained(
            AutoModelForSeq2SeqLM.from_pretrained, self.model_id, "translation model",
            dtype=self.torch_dtype,
        )
        self.model.to(self.device)
        self.model.eval()
        self.name = f"{self.lang.family}:{self.model_id}"
        self._fingerprint = model_fingerprint(self.model_id)
        # The tokenizer carries the source language as state: one batch at a time.
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "family": self.lang.family,
            "model": self.model_id,
            "weights": self._fingerprint,
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "num_beams": self.num_beams,
            "max_new_tokens": self.max_new_tokens,
            "max_input_tokens": self.max_input_tokens,
            "versions": library_versions("transformers", "torch", "tokenizers"),
        }

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        src, tgt = check_pair(src, tgt)
        forced_bos = self.lang.token_id(tgt)
        with self._lock:
            self.lang.set_source(src)
            return translate_sorted(
                texts, self.batch_size, lambda batch: self._generate(batch, forced_bos)
            )

    def _generate(self, batch: list[str], forced_bos: int) -> list[str]:
        import torch

        warn_if_truncated(self.tokenizer, batch, self.max_input_tokens, self.name)
        enc = self.tokenizer(
            batch, return_tensors="pt", padding=True, truncation=True,
            max_length=self.max_input_tokens,
        ).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                forced_bos_token_id=forced_bos,
                num_beams=self.num_beams,
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
            )
        return [self.lang.decode(row) for row in out.tolist()]
