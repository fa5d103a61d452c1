"""NLLB-200 / M2M-100 converted to CTranslate2 (faster, int8-capable inference).

``convert_to_ct2`` converts a transformers folder with
``ctranslate2.converters.TransformersConverter`` and saves the tokenizer next to the
converted weights, so that the CTranslate2 folder is self-contained.

CTranslate2 works on token strings: the source is tokenised by the transformers tokenizer
(with the source language token, as for ``HFSeq2SeqTranslator``), the target language
token is given as ``target_prefix`` and dropped from the hypothesis, and the remaining
tokens are decoded by the tokenizer without language and special tokens. With the same weights,
float32 and greedy search, the output equals ``HFSeq2SeqTranslator``'s.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from personalign.build.translators.base import (
    check_pair,
    folder_fingerprint,
    library_versions,
    load_pretrained,
    local_model_folder,
    translate_sorted,
)
from personalign.build.translators.hf import Family, LanguageTokens, warn_if_truncated

CONVERSION_INFO = "personalign_ct2.json"


def load_tokenizer_for_conversion(folder: str | Path, **kwargs: Any) -> Any:
    """The folder's tokenizer, with M2M-100's language tokens listed as special tokens.

    Under transformers 5 an M2M-100 tokenizer whose config does not list its ``__xx__``
    tokens leaves them out of ``get_vocab()``; CTranslate2's converter then builds a
    vocabulary 100 entries short and refuses the model. Listing them restores the real
    vocabulary (their ids do not change).
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), **kwargs)
    codes = getattr(tok, "lang_code_to_id", None)
    if not codes:
        return tok
    tokens = [tok.get_lang_token(code) for code in codes]
    vocab = tok.get_vocab()
    if all(t in vocab for t in tokens):
        return tok
    return AutoTokenizer.from_pretrained(str(folder), additional_special_tokens=tokens, **kwargs)


def convert_to_ct2(
    hf_folder: str | Path,
    out_folder: str | Path,
    *,
    quantization: str | None = None,
    force: bool = False,
) -> Path:
    """Convert a transformers NLLB / M2M-100 folder to a CTranslate2 folder.

    ``quantization``: None (keep the weights' type), "int8", "int8_float16", "float16",
    ... (see CTranslate2's docs). The conversion is written to a temporary folder next to
    ``out_folder`` and renamed into place; an existing ``out_folder`` is an error unless
    ``force``. The folder also gets the tokenizer files and ``personalign_ct2.json``
    (source folder, its fingerprint, quantization, CTranslate2 version).
    """
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):  # type: ignore[misc]
        def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str,
                           **kwargs: Any) -> Any:
            return load_tokenizer_for_conversion(model_name_or_path, **kwargs)

    src = Path(hf_folder)
    out = Path(out_folder)
    if not src.is_dir():
        raise FileNotFoundError(f"transformers model folder {src} does not exist")
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass force=True to replace it")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        Converter(str(src)).convert(str(tmp), quantization=quantization, force=True)
        load_tokenizer_for_conversion(src).save_pretrained(str(tmp))
        info = {
            "source": str(src),
            "source_fingerprint": folder_fingerprint(src),
            "quantization": quantization,
            "versions": library_versions("ctranslate2", "transformers"),
        }
        (tmp / CONVERSION_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


class CT2Translator:
    """A CTranslate2 NLLB / M2M-100 model.

    Args:
        model: a CTranslate2 folder (from ``convert_to_ct2``) or a hub id of one.
        tokenizer: folder or hub id of the tokenizer; default: the model folder.
        family: "auto" (from the tokenizer), "nllb" or "m2m100".
        device: "auto" (CUDA when CTranslate2 sees a GPU), "cpu" or "cuda".
        compute_type: CTranslate2 compute type ("default", "int8", "float16", ...).
        beam_size: 1 = greedy.
        max_decoding_length: most tokens generated per text, the target language token
            included (as ``max_new_tokens`` of the transformers backend).
        max_input_tokens: inputs are cut to this many tokens (a warning says when).
        batch_size: texts per translate_batch call (texts are sorted by length first).
        intra_threads: CPU threads per translation (0 = CTranslate2's default).
    """

    backend = "ctranslate2"

    def __init__(
        self,
        model: str | Path,
        *,
        tokenizer: str | Path | None = None,
        family: Family = "auto",
        device: str = "auto",
        compute_type: str = "default",
        beam_size: int = 4,
        max_decoding_length: int = 256,
        max_input_tokens: int = 512,
        batch_size: int = 16,
        intra_threads: int = 0,
    ) -> None:
        import ctranslate2
        from transformers import AutoTokenizer

        self.model_id = str(model)
        folder = local_model_folder(self.model_id, "CTranslate2 model")
        if not (folder / "model.bin").is_file():
            raise FileNotFoundError(
                f"{folder} holds no model.bin: it is not a CTranslate2 model; convert a "
                "transformers folder with personalign.build.translate.convert_to_ct2"
            )
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.device = device
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.max_decoding_length = max_decoding_length
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        tok_source = str(tokenizer) if tokenizer is not None else str(folder)
        self.tokenizer: Any = load_pretrained(
            AutoTokenizer.from_pretrained, tok_source, "tokenizer"
        )
        self.lang = LanguageTokens(self.tokenizer, family)
        self.translator = ctranslate2.Translator(
            str(folder), device=device, compute_type=compute_type, intra_threads=intra_threads
        )
        self.name = f"{self.lang.family}-ct2:{self.model_id}"
        self._fingerprint = folder_fingerprint(folder)
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "family": self.lang.family,
            "model": self.model_id,
            "weights": self._fingerprint,
            "compute_type": self.compute_type,
            "beam_size": self.beam_size,
            "max_decoding_length": self.max_decoding_length,
            "max_input_tokens": self.max_input_tokens,
            "versions": library_versions("ctranslate2", "transformers", "tokenizers"),
        }

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        src, tgt = check_pair(src, tgt)
        tgt_token = self.lang.token(tgt)
        with self._lock:
            self.lang.set_source(src)
            return translate_sorted(
                texts, self.batch_size, lambda batch: self._translate_batch(batch, tgt_token)
            )

    def _translate_batch(self, batch: list[str], tgt_token: str) -> list[str]:
        warn_if_truncated(self.tokenizer, batch, self.max_input_tokens, self.name)
        ids = self.tokenizer(batch, truncation=True, max_length=self.max_input_tokens)["input_ids"]
        source = [self.tokenizer.convert_ids_to_tokens(row) for row in ids]
        results = self.translator.translate_batch(
            source,
            target_prefix=[[tgt_token]] * len(source),
            beam_size=self.beam_size,
            max_decoding_length=self.max_decoding_length,
            max_batch_size=len(source),
        )
        out: list[str] = []
        for result in results:
            tokens = list(result.hypotheses[0])
            if tokens and tokens[0] == tgt_token:
                tokens = tokens[1:]
            out.append(self.lang.decode(self.tokenizer.convert_tokens_to_ids(tokens)))
        return out
