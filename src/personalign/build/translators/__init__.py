"""Machine-translation backends behind one ``Translator`` protocol.

Heavy libraries (torch, transformers, ctranslate2, openai) are imported when a backend is
constructed, not when this package is imported.
"""

from personalign.build.translators.base import (
    TranslationError,
    TranslationRejected,
    Translator,
    TranslatorUnavailable,
    identity_hash,
)
from personalign.build.translators.ct2 import CT2Translator, convert_to_ct2
from personalign.build.translators.hf import HFSeq2SeqTranslator
from personalign.build.translators.indictrans2 import IndicTrans2Translator, load_indic_processor
from personalign.build.translators.llm import LLMTranslator

__all__ = [
    "CT2Translator",
    "HFSeq2SeqTranslator",
    "IndicTrans2Translator",
    "LLMTranslator",
    "TranslationError",
    "TranslationRejected",
    "Translator",
    "TranslatorUnavailable",
    "convert_to_ct2",
    "identity_hash",
    "load_indic_processor",
]
