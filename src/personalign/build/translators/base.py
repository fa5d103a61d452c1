"""The translator protocol and the plumbing every backend shares.

A backend turns a list of texts in one language into a list of texts in another, in the
same order, one output per input. Languages are codes from ``personalign.languages``
(``"eng_Latn"``, ``"hin_Deva"``); each backend maps them to its model's own tokens.

``identity()`` returns everything that decides the output besides the input texts and the
language pair: backend, model, a fingerprint of the weights, decoding settings. It goes
into the lineage of every translated record; ``identity_hash`` (its sha256, with library
versions left out) tells a resumed run whether a checkpoint was written by the same
translator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from personalign.languages import BY_CODE, resolve
from personalign.models.base import ModelUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Files at most this large enter the folder fingerprint with their content; larger ones
# (weights, big tokenizer files) with name and size only, so that fingerprinting a 13 GB
# checkpoint costs a directory listing, not a full read.
SMALL_FILE_BYTES = 1 << 20


@runtime_checkable
class Translator(Protocol):
    """A machine-translation backend.

    ``translate(texts, src, tgt)`` returns one string per input text, in input order;
    a blank input gives ``""``. ``src`` and ``tgt`` are codes from
    ``personalign.languages``. ``identity()`` is JSON-able and must not contain secrets.
    """

    name: str

    def identity(self) -> dict[str, Any]: ...

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]: ...


class TranslationError(RuntimeError):
    """A batch could not be translated (the backend failed or gave the wrong shape)."""


class TranslationRejected(TranslationError):
    """The backend answered, but its output was unusable even after one repair request.

    ``reason`` says what was wrong with the last answer.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TranslatorUnavailable(ModelUnavailable):
    """The translation model or its runtime cannot be had here; the message says how."""


def identity_hash(identity: dict[str, Any]) -> str:
    """First 16 hex digits of sha256 over the canonical JSON of ``identity``.

    The ``versions`` key (library versions) is left out: it is lineage, and a library
    upgrade between a crash and its restart should not orphan a checkpoint.
    """
    core = {k: v for k, v in identity.items() if k != "versions"}
    text = json.dumps(core, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_pair(src: str, tgt: str) -> tuple[str, str]:
    """Canonical codes for a language pair; ValueError for unknown or equal languages."""
    src_code = resolve(src).code
    tgt_code = resolve(tgt).code
    if src_code == tgt_code:
        raise ValueError(f"source and target language are the same ({src_code})")
    return src_code, tgt_code


def iso639_1(code: str) -> str:
    """The two-letter ISO 639-1 code of a language (the two-letter alias in the table)."""
    for alias in BY_CODE[code].aliases:
        if len(alias) == 2:
            return alias
    raise ValueError(f"the language table has no ISO 639-1 code for {code}")


def translate_sorted(
    texts: Sequence[str],
    batch_size: int,
    translate_batch: Callable[[list[str]], list[str]],
) -> list[str]:
    """Translate ``texts`` in batches of similar length and return them in input order.

    Non-blank texts are sorted by character length, longest first (ties keep input
    order), cut into batches of ``batch_size`` and passed to ``translate_batch``; sorting
    keeps padding small, and longest-first makes an out-of-memory error show at once.
    Blank texts are not sent to the model (a seq2seq model invents text for them) and
    come back as ``""``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = [""] * len(texts)
    todo = [i for i, text in enumerate(texts) if text.strip()]
    order = sorted(todo, key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        got = translate_batch([texts[i] for i in idx])
        if len(got) != len(idx):
            raise TranslationError(
                f"the backend returned {len(got)} translations for a batch of {len(idx)} texts"
            )
        for i, text in zip(idx, got, strict=True):
            out[i] = text
    return out


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 over the files of a model folder, as 16 hex digits.

    For every file (sorted by relative path): its path and size, and for files of at
    most SMALL_FILE_BYTES also the sha256 of the content (config, tokenizer settings,
    vocabularies). Weight files enter by size only: cheap, and a changed config, vocabulary
    or weight-file size changes it; two folders that differ only inside equally sized
    weight files are not told apart.
    """
    root = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".cache/") or rel.endswith(".lock"):
            continue
        size = path.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        if size <= SMALL_FILE_BYTES:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def looks_like_path(model: str) -> bool:
    """True for strings that can only be a file-system path, never a hub id."""
    if model.startswith(("/", ".", "~")) or model.count("/") > 1:
        return True
    return os.sep != "/" and os.sep in model


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face endpoint opens within ``timeout_s``.

    False at once when HF_HUB_OFFLINE is set. One quick probe instead of letting
    transformers retry for about a minute before it gives up.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    parts = urlsplit(constants.ENDPOINT)
    host = parts.hostname
    if host is None:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def unavailable_message(model: str, what: str) -> str:
    """The one-line message for a hub id that can be neither found locally nor fetched."""
    from huggingface_hub import constants

    return (
        f"cannot load {what} {model!r}: it is not a local folder, not in the Hugging Face "
        f"cache, and the Hub ({constants.ENDPOINT}) cannot be reached from here; on a "
        f"machine with internet access run `hf download {model} --local-dir <folder>`, copy "
        "the folder here and pass its path instead of the hub id"
    )


def load_pretrained(loader: Callable[..., T], model: str, what: str, **kwargs: Any) -> T:
    """Call ``loader(model, **kwargs)`` (a ``from_pretrained``) for a folder or a hub id.

    A local folder is loaded as is. A hub id is loaded from the Hub when it can be
    reached, else from the local Hugging Face cache only; when neither works this raises
    TranslatorUnavailable with one line that says how to get the weights.
    """
    if Path(model).expanduser().is_dir():
        return loader(str(Path(model).expanduser()), **kwargs)
    if looks_like_path(model):
        raise TranslatorUnavailable(f"model folder {model} does not exist")
    if hub_reachable():
        return loader(model, **kwargs)
    try:
        return loader(model, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        raise TranslatorUnavailable(unavailable_message(model, what)) from None


def local_model_folder(model: str, what: str) -> Path:
    """A folder holding ``model``: the folder itself, or the hub snapshot (downloaded when
    the Hub can be reached, else taken from the cache). For runtimes that need a folder
    (CTranslate2). Raises TranslatorUnavailable like ``load_pretrained``."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if looks_like_path(model):
        raise TranslatorUnavailable(f"model folder {model} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=not hub_reachable()))
    except (OSError, ValueError):
        raise TranslatorUnavailable(unavailable_message(model, what)) from None


def model_fingerprint(model: str) -> str:
    """``folder_fingerprint`` of a local folder, or of the cached hub snapshot; for a hub
    id with no snapshot in the cache, ``"hub:<id>"`` (the revision is then unknown)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return folder_fingerprint(path)
    try:
        from huggingface_hub import snapshot_download

        return folder_fingerprint(snapshot_download(model, local_files_only=True))
    except Exception:  # no cached snapshot: nothing better to record
        return f"hub:{model}"


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    """torch dtype for a name; "auto" is float16 on CUDA and float32 elsewhere."""
    import torch

    name = ("float16" if device.startswith("cuda") else "float32") if dtype == "auto" else dtype
    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if name not in table:
        raise ValueError(f"unknown dtype {dtype!r}; use one of: auto, {', '.join(table)}")
    return table[name]


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
