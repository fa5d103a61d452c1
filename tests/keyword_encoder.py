"""A keyword one-hot mock encoder whose rankings can be computed by hand.

Pair k of the toy dataset carries keyword k (an English word and a Devanagari word that
both map to dimension k). A text's vector counts the keywords it contains, so persona k and
instruction k share exactly one dimension and every other pair scores 0 against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from personalign.data.schema import Dataset, Record

N_PAIRS = 20
EN_WORDS = [f"kw{chr(97 + k)}" for k in range(N_PAIRS)]  # kwa, kwb, ...
HI_WORDS = [chr(0x0915 + k) + "\u093e\u092e" for k in range(N_PAIRS)]  # काम, खाम, ...


class KeywordEncoder:
    kind = "dense"
    name = "keyword-mock"
    dim = N_PAIRS + 1

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (prompt, text) per encoded text

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            self.calls.append((prompt, text))
            words = text.split()
            for k in range(N_PAIRS):
                out[i, k] = words.count(EN_WORDS[k]) + words.count(HI_WORDS[k])
            out[i, -1] = 0.0 if out[i].any() else 1.0
        return out

    def cache_identity(self) -> dict[str, Any]:
        return {"model": self.name, "revision": "1"}


def prompt(role: str, direction: str) -> str:
    return f"{role}-{direction}: "


def toy_dataset() -> Dataset:
    """20 pairs in English and Hindi. Persona 0 also mentions keyword 1, which makes its
    gold instruction tie with instruction 1 (expected rank 1.5); every other query ranks 1."""
    records = []
    for k in range(N_PAIRS):
        extra_en = f" {EN_WORDS[1]}" if k == 0 else ""
        extra_hi = f" {HI_WORDS[1]}" if k == 0 else ""
        pid = f"p{k:02d}"
        records.append(Record(pid, "eng_Latn", f"a person who likes {EN_WORDS[k]}{extra_en}",
                              f"tell me about {EN_WORDS[k]}", f"never {EN_WORDS[k]} again",
                              domain="toy"))
        records.append(Record(pid, "hin_Deva", f"एक व्यक्ति जिसे {HI_WORDS[k]}{extra_hi} पसंद है",
                              f"मुझे {HI_WORDS[k]} के बारे में बताओ",
                              f"फिर कभी {HI_WORDS[k]} नहीं", domain="toy"))
    return Dataset("toy", records, {"license": "CC0"})
