"""IndicTrans2 (ai4bharat/indictrans2-*) with IndicTransToolkit's IndicProcessor.

IndicTrans2 is trained on text prepared by IndicProcessor, and its output has to go back
through it:

- ``preprocess_batch(texts, src_lang, tgt_lang)`` normalises punctuation and numerals,
  replaces URLs, e-mails and numbers by placeholders (``<ID1>``), tokenises, transliterates
  Indic scripts to Devanagari (the model's shared script) and prefixes the two language
  tags: ``"eng_Latn hin_Deva <tokenised text>"``.
- the model generates target text (Indic output in Devanagari), decoded with the
  tokenizer in target mode (IndicTrans2 has separate source and target vocabularies);
- ``postprocess_batch(outputs, lang=tgt)`` restores the placeholders, transliterates from
  Devanagari back to the target script and detokenises.

IndicProcessor keeps the placeholder maps of a preprocessed batch in a queue that the
next postprocess call consumes, so each batch is pre- and postprocessed in the same order
under a lock. Checkpoints: ``indictrans2-en-indic-*`` translate from eng_Latn,
``indictrans2-indic-en-*`` into eng_Latn, ``indictrans2-indic-indic-*`` between Indic
languages; a language tag the checkpoint does not know raises ValueError.

The real checkpoints need ``trust_remote_code=True`` (custom model and tokenizer code).
That code was written for transformers 4: its configuration_indictrans.py imports
``transformers.onnx``, which transformers 5 removed, so under this project's pinned
transformers 5 a published checkpoint fails to load until that import is removed (the
error says so); the model and tokenizer code were not tried here.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from personalign.build.translators.base import (
    TranslatorUnavailable,
    check_pair,
    library_versions,
    load_pretrained,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
    translate_sorted,
)
from personalign.build.translators.hf import warn_if_truncated


def load_indic_processor() -> Any:
    """A new ``IndicProcessor(inference=True)`` from the ``indictranstoolkit`` package.

    indictranstoolkit 1.1.1 cannot be imported as a package under transformers 5: its
    ``__init__`` imports the training collator, which imports
    ``transformers.tokenization_utils.PreTrainedTokenizerBase`` (gone in transformers 5).
    The processor itself does not need transformers, so when the package import fails the
    compiled ``IndicTransToolkit.processor`` module is loaded from the installed package
    folder without running the package ``__init__``.
    """
    try:
        module = importlib.import_module("IndicTransToolkit.processor")
    except ImportError as err:
        module = _load_processor_module(err)
    return module.IndicProcessor(inference=True)


def _load_processor_module(err: ImportError) -> Any:
    spec = importlib.util.find_spec("IndicTransToolkit")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        for suffix in [*importlib.machinery.EXTENSION_SUFFIXES, ".py"]:
            path = Path(folder) / f"processor{suffix}"
            if not path.is_file():
                continue
            name = "IndicTransToolkit.processor"
            loader: Any
            if suffix == ".py":
                loader = importlib.machinery.SourceFileLoader(name, str(path))
            else:
                loader = importlib.machinery.ExtensionFileLoader(name, str(path))
            proc_spec = importlib.util.spec_from_file_location(name, path, loader=loader)
            if proc_spec is None:
                continue
            module = importlib.util.module_from_spec(proc_spec)
            loader.exec_module(module)
            return module
    raise TranslatorUnavailable(
        "IndicTrans2 needs IndicTransToolkit's IndicProcessor: install the 'build' extra "
        f"(pip install 'personalign[build]'); import failed with: {err}"
    ) from None


def remote_code_message(model: str, err: ImportError) -> str:
    """One line for a checkpoint whose custom code does not import here."""
    from importlib.metadata import version

    return (
        f"the custom code of IndicTrans2 checkpoint {model} does not import under "
        f"transformers {version('transformers')} ({type(err).__name__}: {err}); the published "
        "configuration_indictrans.py imports transformers.onnx, which transformers 5 removed: "
        "run IndicTrans2 with transformers<5, or delete the ONNX config class and its imports "
        "from the checkpoint's configuration_indictrans.py"
    )


@contextmanager
def target_mode(tokenizer: Any) -> Iterator[None]:
    """Decode with the target vocabulary: IndicTrans2's tokenizer switches vocabularies
    with ``_switch_to_target_mode`` / ``_switch_to_input_mode``; tokenizers without them
    have one vocabulary and are left alone."""
    to_target = getattr(tokenizer, "_switch_to_target_mode", None)
    to_input = getattr(tokenizer, "_switch_to_input_mode", None)
    if to_target is None or to_input is None:
        yield
        return
    to_target()
    try:
        yield
    finally:
        to_input()


class IndicTrans2Translator:
    """IndicTrans2 through transformers, wrapped in IndicProcessor pre/postprocessing.

    Args:
        model: a local folder or a hub id (``"ai4bharat/indictrans2-en-indic-1B"``).
        device: "auto", "cpu", "cuda", ...
        dtype: "auto" (float16 on CUDA, float32 on CPU), "float32", "float16", "bfloat16".
        num_beams: beam width (the IndicTrans2 examples use 5); 1 = greedy.
        max_new_tokens: most tokens generated per text.
        max_input_tokens: inputs are cut to this many tokens (a warning says when).
        batch_size: texts per generate call (texts are sorted by length first).
        trust_remote_code: run the checkpoint's own model/tokenizer code (the real
            IndicTrans2 checkpoints need it).
    """

    backend = "indictrans2"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        num_beams: int = 5,
        max_new_tokens: int = 256,
        max_input_tokens: int = 256,
        batch_size: int = 16,
        trust_remote_code: bool = True,
    ) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.model_id = str(model)
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        self.processor = load_indic_processor()
        try:
            self.tokenizer = load_pretrained(
                AutoTokenizer.from_pretrained, self.model_id, "IndicTrans2 tokenizer",
                trust_remote_code=trust_remote_code,
            )
            self.model = load_pretrained(
                AutoModelForSeq2SeqLM.from_pretrained, self.model_id, "IndicTrans2 model",
                trust_remote_code=trust_remote_code, dtype=self.torch_dtype,
            )
        except ImportError as err:
            raise TranslatorUnavailable(remote_code_message(self.model_id, err)) from None
        self.model.to(self.device)
        self.model.eval()
        self.name = f"indictrans2:{self.model_id}"
        self._fingerprint = model_fingerprint(self.model_id)
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model_id,
            "weights": self._fingerprint,
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "num_beams": self.num_beams,
            "max_new_tokens": self.max_new_tokens,
            "max_input_tokens": self.max_input_tokens,
            "versions": library_versions(
                "transformers", "torch", "indictranstoolkit", "indic-nlp-library-itt"
            ),
        }

    def check_tags(self, src: str, tgt: str) -> None:
        """ValueError unless the tokenizer knows both language tags."""
        unk = self.tokenizer.unk_token_id
        for tag in (src, tgt):
            token_id = self.tokenizer.convert_tokens_to_ids(tag)
            if token_id is None or token_id == unk:
                raise ValueError(
                    f"IndicTrans2 checkpoint {self.model_id} has no language tag {tag}: "
                    "en-indic checkpoints translate from eng_Latn, indic-en ones into "
                    "eng_Latn, indic-indic ones between Indic languages"
                )

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        src, tgt = check_pair(src, tgt)
        self.check_tags(src, tgt)

        def run(batch: list[str]) -> list[str]:
            prepared = self.processor.preprocess_batch(batch, src_lang=src, tgt_lang=tgt)
            raw = self.generate_prepared(prepared)
            return [str(t) for t in self.processor.postprocess_batch(raw, lang=tgt)]

        with self._lock:
            return translate_sorted(texts, self.batch_size, run)

    def generate_prepared(self, prepared: list[str]) -> list[str]:
        """Model-side step: tokenise preprocessed strings (``"<src> <tgt> text"``),
        generate, decode with the target vocabulary. Returns the raw model output, before
        IndicProcessor's postprocessing."""
        import torch

        warn_if_truncated(self.tokenizer, prepared, self.max_input_tokens, self.name)
        enc = self.tokenizer(
            prepared, return_tensors="pt", padding="longest", truncation=True,
            max_length=self.max_input_tokens,
        ).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                num_beams=self.num_beams,
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
            )
        with target_mode(self.tokenizer):
            decoded = self.tokenizer.batch_decode(
                out.detach().cpu().tolist(), skip_special_tokens=True,
                clean_up_tokenization_spaces=True,
            )
        return [str(t) for t in decoded]
