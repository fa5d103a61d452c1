"""sentence-transformers backend: a hub id or a local model folder.

Loading never waits on an unreachable hub for long:

1. A local folder is loaded as is (``local_files_only``).
2. A hub id is looked up in the local hub cache first (``HF_HUB_CACHE`` / ``HF_HOME``, read
   at call time); a cached snapshot is loaded from its folder, with its commit hash as the
   revision, and no network request.
3. Otherwise, when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, ``ModelUnavailable``
   is raised at once.
4. Otherwise the hub is asked for the model's commit with a short timeout
   (``hub_timeout_s``, default 5 s); if that fails, ``ModelUnavailable`` says why in one line
   and how to get the weights; if it succeeds the pinned commit is downloaded and loaded.

Prompts go through sentence-transformers' ``prompt=`` argument (so poolers that exclude
the prompt tokens know its length); ``""`` means no prompt, and a model's configured
default prompt is never applied implicitly.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from personalign.models.base import ModelUnavailable
from personalign.models.registry import cached_snapshot, hub_cache_dir

DTYPES: tuple[str, ...] = ("fp32", "fp16", "bf16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SNAPSHOT_RE = re.compile(
    r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<sha>[0-9a-f]{40})$")
_SKIP_FILES = {".gitattributes", "README.md", "readme.md"}
_FINGERPRINT_EDGE = 1 << 20  # bytes read from each end of a file for the fingerprint


def looks_like_hub_id(name: str) -> bool:
    """``org/name`` with hub-legal characters (and not an existing local path)."""
    return bool(HUB_ID_RE.match(name)) and not Path(name).expanduser().exists()


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set to a true value (read now,
    not at import time as huggingface_hub does)."""
    truthy = {"1", "on", "yes", "true"}
    return any(os.environ.get(v, "").strip().lower() in truthy
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _download_hint(hub_id: str) -> str:
    return (f"on a connected machine run `hf download {hub_id} --local-dir DIR` "
            "(or `huggingface-cli download` with huggingface_hub<1.0) and pass DIR as the model")


def folder_fingerprint(folder: Path) -> str:
    """sha256 over (relative path, size, first and last MiB) of every file in ``folder``
    except README/.gitattributes and hidden paths: cheap, and it changes when weights are
    overwritten in place with a same-size file."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if rel.name in _SKIP_FILES or any(part.startswith(".") for part in rel.parts):
            continue
        size = path.stat().st_size
        h.update(f"{rel.as_posix()}\0{size}\0".encode())
        with open(path, "rb") as fh:
            h.update(fh.read(_FINGERPRINT_EDGE))
            if size > 2 * _FINGERPRINT_EDGE:
                fh.seek(size - _FINGERPRINT_EDGE)
                h.update(fh.read(_FINGERPRINT_EDGE))
    return h.hexdigest()


def resolve_device(device: str) -> str:
    """"auto" -> cuda if available, else mps, else cpu; an explicit device must exist."""
    import torch

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if device == "cuda" and not has_cuda:
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False; "
                         "use device='cpu' or 'auto'")
    if device == "mps" and not has_mps:
        raise ValueError("device 'mps' requested but it is not available; use 'cpu' or 'auto'")
    return device


def torch_dtype(dtype: str) -> Any:
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; use one of: {', '.join(DTYPES)}")
    return table[dtype]


def _probe_hub(hub_id: str, revision: str | None, timeout_s: float) -> str:
    """The commit hash of ``hub_id`` at ``revision``, asked of the hub with a short timeout.

    Raises ModelUnavailable (one line) when the hub cannot be reached or has no such model.
    """
    from huggingface_hub import HfApi

    endpoint = os.environ.get("HF_ENDPOINT") or None
    try:
        info = HfApi(endpoint=endpoint).model_info(hub_id, revision=revision, timeout=timeout_s)
    except Exception as exc:  # connection errors come from httpx/requests; classify by name
        kind = type(exc).__name__
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
        if "RepositoryNotFound" in kind or "Gated" in kind:
            why = (f"the hub has no accessible model {hub_id!r} ({kind}; if it is gated or "
                   "private, set HF_TOKEN)")
        elif "RevisionNotFound" in kind:
            why = f"the hub has no revision {revision!r} of {hub_id!r}"
        else:
            why = f"cannot reach the Hugging Face hub ({kind}: {first[:120]})"
        raise ModelUnavailable(f"{hub_id}: {why}; it is not in the local cache "
                               f"({hub_cache_dir()}); {_download_hint(hub_id)}") from exc
    if not info.sha:
        raise ModelUnavailable(
            f"{hub_id}: the hub returned no commit hash; {_download_hint(hub_id)}")
    return str(info.sha)


class SentenceTransformerEncoder:
    """A sentence-transformers model as a ``DenseEncoder``.

    ``model`` is a local folder or a hub id. ``device``: auto | cpu | cuda | mps. ``dtype``:
    fp32 | fp16 | bf16 (weights and activations; outputs are returned as float32).
    ``max_length`` overrides the model's max_seq_length (tokens; longer texts are truncated).
    ``normalize`` L2-normalises outputs (cosine = dot product). ``trust_remote_code`` stays
    off unless asked: a model that needs it fails with a message saying so.
    ``origin_hub_id`` declares the hub model a local folder is a copy of (it names the model
    in ``cache_identity``, whose files fingerprint makes the key independent of where the
    folder lies).
    """

    kind: Literal["dense"] = "dense"

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        device: str = "auto",
        dtype: str = "fp32",
        max_length: int | None = None,
        batch_size: int = 32,
        trust_remote_code: bool = False,
        revision: str | None = None,
        normalize: bool = True,
        hub_timeout_s: float = 5.0,
        origin_hub_id: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of: {', '.join(DTYPES)}")
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
        self.name = name or model
        self.batch_size = batch_size
        self.normalize = normalize
        self.dtype = dtype
        self.hub_id, self.revision, folder = self._locate(model, revision, hub_timeout_s)
        if self.hub_id is None:
            self.hub_id = origin_hub_id

        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(device)
        source = str(folder) if folder is not None else self.hub_id
        assert source is not None
        try:
            st = SentenceTransformer(
                source, device=self.device, trust_remote_code=trust_remote_code,
                revision=None if folder is not None else self.revision,
                local_files_only=folder is not None,
                model_kwargs={"dtype": torch_dtype(dtype)},
            )
        except (OSError, ValueError, ImportError) as exc:
            msg = str(exc)
            if "trust_remote_code" in msg:
                raise ModelUnavailable(
                    f"{model}: this model runs its own code from the hub; review it, then "
                    "pass trust_remote_code=True (CLI: --trust-remote-code)"
                ) from exc
            first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
            raise ModelUnavailable(f"{model}: cannot load as a sentence-transformers model "
                                   f"({type(exc).__name__}: {first[:200]})") from exc
        if max_length is not None:
            st.max_seq_length = max_length
        self._model = st
        if folder is None:  # downloaded just now: fingerprint the snapshot it landed in
            folder = cached_snapshot(self.hub_id, self.revision) if self.hub_id else None
        self.folder = folder
        self._fingerprint = folder_fingerprint(folder) if folder is not None else None
        dim = st.get_embedding_dimension()
        if dim is None:
            dim = int(st.encode(["x"], prompt="", convert_to_numpy=True).shape[1])
        self.dim: int = int(dim)

    @staticmethod
    def _locate(model: str, revision: str | None,
                timeout_s: float) -> tuple[str | None, str | None, Path | None]:
        """(hub id or None, commit or None, local folder or None for a hub download)."""
        path = Path(model).expanduser()
        if path.exists():
            if not path.is_dir():
                raise ModelUnavailable(f"{model} is a file; pass the model folder instead")
            path = path.resolve()
            if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
                raise ModelUnavailable(
                    f"{path} has neither modules.json nor config.json: not a "
                    "sentence-transformers or transformers model folder")
            m = _SNAPSHOT_RE.search(path.as_posix())
            if m:  # a folder inside the hub cache: its name is the commit
                return f"{m['org']}/{m['name']}", m["sha"], path
            return None, None, path
        if not HUB_ID_RE.match(model):
            raise ModelUnavailable(
                f"{model!r} is neither an existing local folder nor a Hugging Face model id "
                "(org/name)")
        snap = cached_snapshot(model, revision)
        if snap is not None:
            return model, snap.name, snap
        if hub_offline():
            raise ModelUnavailable(
                f"{model}: not in the local Hugging Face cache ({hub_cache_dir()}) and "
                f"HF_HUB_OFFLINE is set; {_download_hint(model)}")
        return model, _probe_hub(model, revision, timeout_s), None

    @property
    def max_seq_length(self) -> int | None:
        """Tokens per text after which input is truncated (None: the model sets no limit)."""
        value = self._model.max_seq_length
        return None if value is None else int(value)

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        """float32 (len(texts), dim); rows L2-normalised when ``normalize``."""
        items = list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            items, prompt=prompt, batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=self.normalize, show_progress_bar=False,
        )
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32))

    def cache_identity(self) -> dict[str, Any]:
        return {
            "backend": "sentence-transformers",
            "model": self.hub_id,
            "revision": self.revision,
            "files_fingerprint": self._fingerprint,
            "dtype": self.dtype,
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
            "dim": self.dim,
        }
