"""Registry integrity: the study's models, both prompt sets, exact prompts, lookups."""

from __future__ import annotations

import pytest

from personalign.languages import ALL_CODES
from personalign.models.registry import (
    BACKENDS,
    DEFAULT_MODELS,
    DIRECTIONS,
    MULTILINGUAL,
    PROMPT_SETS,
    ROLES,
    STUDY_MODELS,
    ModelSpec,
    availability,
    get_spec,
    list_specs,
    require_spec,
)

STUDY_HUB_IDS = {
    "intfloat/multilingual-e5-large-instruct",
    "BAAI/bge-m3",
    "sentence-transformers/LaBSE",
    "sentence-transformers/paraphrase-multilingual-mpnet-base-v2",
    "sentence-transformers/distiluse-base-multilingual-cased-v2",
    "sentence-transformers/paraphrase-xlm-r-multilingual-v1",
    "l3cube-pune/indic-sentence-similarity-sbert",
    "l3cube-pune/indic-sentence-bert-nli",
}


def test_the_study_eight_are_registered_and_flagged() -> None:
    assert {get_spec(n).hub_id for n in STUDY_MODELS} == STUDY_HUB_IDS  # type: ignore[union-attr]
    assert len(STUDY_MODELS) == 8
    for hub_id in STUDY_HUB_IDS:
        spec = get_spec(hub_id)
        assert spec is not None and spec.in_study and spec.backend == "sentence-transformers"


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_every_spec_is_complete(spec: ModelSpec) -> None:
    assert spec.backend in BACKENDS
    assert set(spec.prompts) == set(PROMPT_SETS)
    for pset in PROMPT_SETS:
        assert set(spec.prompts[pset]) == set(DIRECTIONS)
        for role in ROLES:
            for direction in DIRECTIONS:
                assert isinstance(spec.prompt(pset, role, direction), str)
    assert spec.languages == (MULTILINGUAL,) or (
        len(spec.languages) > 0 and all(c in ALL_CODES for c in spec.languages))
    assert (spec.dim is None) == spec.backend.startswith("lexical")
    assert spec.params >= 0 and spec.license and spec.description
    assert spec.similarity == "cosine"


def test_names_and_hub_ids_are_unique() -> None:
    specs = list_specs()
    assert len({s.name for s in specs}) == len(specs)
    hub_ids = [s.hub_id for s in specs if s.hub_id]
    assert len(set(hub_ids)) == len(hub_ids)


def test_bge_m3_prompts_as_in_design() -> None:
    spec = require_spec("bge-m3")
    for direction in DIRECTIONS:
        assert spec.prompt("paper", "query", direction) == \
            "Represent this sentence for searching relevant passages: "
        assert spec.prompt("paper", "document", direction) == \
            "Represent this sentence for retrieving relevant passages: "
        assert spec.prompt("card", "query", direction) == ""
        assert spec.prompt("card", "document", direction) == ""


def test_e5_instruct_prompts_as_in_design() -> None:
    spec = require_spec("intfloat/multilingual-e5-large-instruct")
    for direction in DIRECTIONS:
        assert spec.prompt("paper", "query", direction) == "Instruct: "
        assert spec.prompt("paper", "document", direction) == "Passage: "
        card_q = spec.prompt("card", "query", direction)
        assert card_q.startswith("Instruct: ") and card_q.endswith("\nQuery: ")
        assert len(card_q) > len("Instruct: \nQuery: ")  # a task description in between
        assert spec.prompt("card", "document", direction) == ""  # queries only
    # The task description names the direction.
    assert spec.prompt("card", "query", "p2i") != spec.prompt("card", "query", "i2p")


@pytest.mark.parametrize("name", ["labse", "indic-sbert", "indic-sbert-nli"])
def test_no_prompts_for_labse_and_l3cube(name: str) -> None:
    spec = require_spec(name)
    for pset in PROMPT_SETS:
        for role in ROLES:
            for direction in DIRECTIONS:
                assert spec.prompt(pset, role, direction) == ""


@pytest.mark.parametrize("name", ["me5-small", "me5-base", "me5-large", "me5-small-nano"])
def test_multilingual_e5_card_prompts(name: str) -> None:
    spec = require_spec(name)
    for direction in DIRECTIONS:
        assert spec.prompt("card", "query", direction) == "query: "
        assert spec.prompt("card", "document", direction) == "passage: "
        # Not in the study: the reference implementation would apply no prefix.
        assert spec.prompt("paper", "query", direction) == ""


def test_field_prompts_follow_the_direction() -> None:
    spec = require_spec("bge-m3")
    q = "Represent this sentence for searching relevant passages: "
    d = "Represent this sentence for retrieving relevant passages: "
    assert spec.field_prompts("paper", "p2i") == {"persona": q, "instruction": d}
    assert spec.field_prompts("paper", "i2p") == {"persona": d, "instruction": q}


def test_prompt_rejects_unknown_arguments() -> None:
    spec = require_spec("bge-m3")
    with pytest.raises(ValueError, match="prompt_set"):
        spec.prompt("model-card", "query", "p2i")
    with pytest.raises(ValueError, match="role"):
        spec.prompt("card", "passage", "p2i")
    with pytest.raises(ValueError, match="direction"):
        spec.prompt("card", "query", "persona->instruction")


def test_lookup_by_name_hub_id_alias_any_case() -> None:
    assert require_spec("BAAI/BGE-M3").name == "bge-m3"
    assert require_spec("e5-large-instruct").name == "me5-large-instruct"  # paper's name
    assert require_spec("sentence-transformers/all-MiniLM-L6-v2").name == "minilm-l6-en"
    assert get_spec("no-such-model") is None
    with pytest.raises(KeyError, match="known: "):
        require_spec("no-such-model")


def test_defaults_and_flags() -> None:
    assert DEFAULT_MODELS == ["me5-small-nano", "bm25", "tfidf-char"]
    assert require_spec("xlmr-large-random").benchmark_only
    assert require_spec("static-64").optional
    assert require_spec("minilm-l6-en").languages == ("eng_Latn",)
    assert "asm_Beng" not in require_spec("indic-sbert").languages


@pytest.mark.parametrize("name", DEFAULT_MODELS)
def test_defaults_run_offline_here(name: str) -> None:
    ok, why = availability(require_spec(name))
    assert ok, why


def test_hub_model_without_cache_is_unavailable_with_instructions(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    ok, why = availability(require_spec("bge-m3"))
    assert not ok
    assert "hf download BAAI/bge-m3" in why and "\n" not in why


def test_hub_model_in_cache_is_available(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sha = "0" * 40
    repo = tmp_path / "models--BAAI--bge-m3"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    (repo / "snapshots" / sha).mkdir(parents=True)
    (repo / "snapshots" / sha / "modules.json").write_text("[]")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    ok, why = availability(require_spec("bge-m3"))
    assert ok and sha in why
