"""HFSeq2SeqTranslator, CT2Translator and IndicTrans2Translator on tiny random models.

The models (tests/build/translate_fixtures.py) have random weights, so translations are
gibberish; what is checked is the machinery: one output per input in input order,
greedy determinism, language tokens on both sides, CTranslate2 = transformers on the same
weights, and IndicProcessor pre/postprocessing around the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from personalign.build.translate import (
    CT2Translator,
    HFSeq2SeqTranslator,
    IndicTrans2Translator,
    convert_to_ct2,
    load_indic_processor,
)
from personalign.languages import script_share
from tests.build.translate_fixtures import tiny_models

TEXTS = [
    "The teacher in Pune plans a lesson for every student.",
    "A farmer sells",
    "मैं एक शिक्षक हूँ और पुणे में रहता हूँ।",
    "",
    "the doctor in Chennai writes a letter every morning today with a nurse.",
    "song",
    "   ",
    "நான் ஒரு ஆசிரியர்.",
]
GREEDY = {"num_beams": 1, "max_new_tokens": 12, "device": "cpu"}


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return tiny_models()


@pytest.fixture(scope="module")
def hf(models: dict[str, Path]) -> dict[str, HFSeq2SeqTranslator]:
    return {fam: HFSeq2SeqTranslator(models[fam], batch_size=3, **GREEDY)  # type: ignore[arg-type]
            for fam in ("nllb", "m2m100")}


@pytest.fixture(scope="module")
def ct2_folders(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ct2")
    return {fam: convert_to_ct2(models[fam], root / fam) for fam in ("nllb", "m2m100")}


def _capture_generate(translator: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the inputs and outputs of every model.generate call."""
    calls: list[dict[str, Any]] = []
    original = translator.model.generate

    def generate(**kwargs: Any) -> Any:
        out = original(**kwargs)
        calls.append({"input_ids": kwargs["input_ids"].tolist(), "kwargs": kwargs,
                      "output": out.tolist()})
        return out

    monkeypatch.setattr(translator.model, "generate", generate)
    return calls


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_hf_one_output_per_input_in_input_order(
    hf: dict[str, HFSeq2SeqTranslator], family: str
) -> None:
    tr = hf[family]
    out = tr.translate(TEXTS, "eng_Latn", "hin_Deva")
    assert len(out) == len(TEXTS)
    assert out[3] == "" and out[6] == ""  # blank in, blank out (never sent)
    # The random model's output depends on its input (else the next check proves nothing).
    assert len({t for t in out if t}) >= 4
    # Batches of 3 sorted by length; each text alone must give the same output in place.
    alone = [tr.translate([t], "eng_Latn", "hin_Deva")[0] for t in TEXTS]
    assert out == alone


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_hf_greedy_is_deterministic_across_instances(
    hf: dict[str, HFSeq2SeqTranslator], models: dict[str, Path], family: str
) -> None:
    first = hf[family].translate(TEXTS, "eng_Latn", "tam_Taml")
    again = hf[family].translate(TEXTS, "eng_Latn", "tam_Taml")
    other = HFSeq2SeqTranslator(models[family], batch_size=8, **GREEDY)  # type: ignore[arg-type]
    assert first == again == other.translate(TEXTS, "eng_Latn", "tam_Taml")
    # Batch size is not part of the identity: same folder and decoding = same translator.
    assert hf[family].identity() == other.identity()


def test_nllb_language_tokens(
    hf: dict[str, HFSeq2SeqTranslator], monkeypatch: pytest.MonkeyPatch
) -> None:
    tr = hf["nllb"]
    tok = tr.tokenizer
    calls = _capture_generate(tr, monkeypatch)
    tr.translate(["A farmer sells", "song"], "eng_Latn", "tam_Taml")
    (call,) = calls
    # Source: [eng_Latn] text </s> (padding after); target: </s> [tam_Taml] ...
    for row in call["input_ids"]:
        assert row[0] == tok.convert_tokens_to_ids("eng_Latn")
        assert tok.eos_token_id in row
    assert call["kwargs"]["forced_bos_token_id"] == tok.convert_tokens_to_ids("tam_Taml")
    assert [row[1] for row in call["output"]] == [tok.convert_tokens_to_ids("tam_Taml")] * 2
    # Same input, another target: another forced token, and the output changes.
    hin = tr.translate(TEXTS, "eng_Latn", "hin_Deva")
    tam = tr.translate(TEXTS, "eng_Latn", "tam_Taml")
    assert hin != tam
    # Another source language changes the source token.
    tr.translate(["मैं एक शिक्षक"], "hin_Deva", "eng_Latn")
    assert calls[-1]["input_ids"][0][0] == tok.convert_tokens_to_ids("hin_Deva")


def test_m2m100_language_tokens(
    hf: dict[str, HFSeq2SeqTranslator], monkeypatch: pytest.MonkeyPatch
) -> None:
    tr = hf["m2m100"]
    tok = tr.tokenizer
    calls = _capture_generate(tr, monkeypatch)
    tr.translate(["A farmer sells"], "eng_Latn", "ory_Orya")
    (call,) = calls
    assert call["input_ids"][0][0] == tok.get_lang_id("en")
    assert call["input_ids"][0][-1] == tok.eos_token_id
    assert call["output"][0][1] == tok.get_lang_id("or")
    assert tok.convert_ids_to_tokens(call["output"][0][1]) == "__or__"
    # M2M-100 has no Telugu or Assamese token: a clear error, not a wrong language.
    with pytest.raises(ValueError, match=r"no language token for Telugu \('te'\)"):
        tr.translate(["x"], "eng_Latn", "tel_Telu")
    with pytest.raises(ValueError, match="Assamese"):
        tr.translate(["x"], "asm_Beng", "eng_Latn")


def test_hf_rejects_bad_language_arguments(hf: dict[str, HFSeq2SeqTranslator]) -> None:
    with pytest.raises(ValueError, match="unknown language"):
        hf["nllb"].translate(["x"], "eng_Latn", "fra_Latn")
    with pytest.raises(ValueError, match="same"):
        hf["nllb"].translate(["x"], "hin_Deva", "hin_Deva")


def test_hf_family_detection(models: dict[str, Path]) -> None:
    assert HFSeq2SeqTranslator(models["nllb"], **GREEDY).lang.family == "nllb"  # type: ignore[arg-type]
    # The IndicTrans2 stand-in's plain tokenizer has no known language-code scheme.
    with pytest.raises(ValueError, match="pass family="):
        HFSeq2SeqTranslator(models["indictrans2"], **GREEDY)  # type: ignore[arg-type]


def test_hf_identity_is_json_and_names_the_settings(hf: dict[str, HFSeq2SeqTranslator]) -> None:
    ident = hf["nllb"].identity()
    json.dumps(ident)
    assert ident["backend"] == "hf-seq2seq" and ident["family"] == "nllb"
    assert ident["num_beams"] == 1 and ident["max_new_tokens"] == 12
    assert ident["dtype"] == "float32" and len(ident["weights"]) == 16


def test_convert_to_ct2_writes_a_self_contained_folder(
    ct2_folders: dict[str, Path], models: dict[str, Path]
) -> None:
    folder = ct2_folders["nllb"]
    names = {p.name for p in folder.iterdir()}
    assert {"model.bin", "config.json", "tokenizer.json", "personalign_ct2.json"} <= names
    info = json.loads((folder / "personalign_ct2.json").read_text())
    assert info["source"] == str(models["nllb"]) and info["quantization"] is None
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    with pytest.raises(FileExistsError, match="force=True"):
        convert_to_ct2(models["nllb"], folder)


@pytest.mark.parametrize("family", ["nllb", "m2m100"])
def test_ct2_equals_transformers_on_the_same_weights(
    hf: dict[str, HFSeq2SeqTranslator], ct2_folders: dict[str, Path], family: str
) -> None:
    ct2 = CT2Translator(ct2_folders[family], beam_size=1, max_decoding_length=12, batch_size=3,
                        device="cpu")
    for tgt in ("hin_Deva", "ory_Orya"):
        got = ct2.translate(TEXTS, "eng_Latn", tgt)
        assert got == hf[family].translate(TEXTS, "eng_Latn", tgt)
        assert got[3] == "" and len({t for t in got if t}) >= 4
    assert ct2.identity()["backend"] == "ctranslate2"
    assert ct2.lang.family == family


def test_ct2_errors(ct2_folders: dict[str, Path], models: dict[str, Path]) -> None:
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 model"):
        CT2Translator(models["nllb"], device="cpu")
    ct2 = CT2Translator(ct2_folders["m2m100"], beam_size=1, device="cpu")
    with pytest.raises(ValueError, match="Telugu"):
        ct2.translate(["x"], "eng_Latn", "tel_Telu")


@pytest.fixture(scope="module")
def indictrans(models: dict[str, Path]) -> IndicTrans2Translator:
    return IndicTrans2Translator(models["indictrans2"], batch_size=8, **GREEDY)  # type: ignore[arg-type]


DEVANAGARI_TEXTS = [
    "The teacher in Pune plans a lesson for every student.",
    "the doctor writes a letter",
    "A farmer sells",
    "song",
]


def test_indictrans2_pre_and_postprocessing_around_the_model(
    indictrans: IndicTrans2Translator,
) -> None:
    ip = load_indic_processor()
    prepared = ip.preprocess_batch(DEVANAGARI_TEXTS, src_lang="eng_Latn", tgt_lang="tam_Taml")
    assert all(p.startswith("eng_Latn tam_Taml ") for p in prepared)
    raw = indictrans.generate_prepared(prepared)
    # The stand-in writes Devanagari (as IndicTrans2 does for every Indic target) ...
    assert sum(script_share(t, "hin_Deva") > 0 for t in raw) >= 2
    expected = ip.postprocess_batch(raw, lang="tam_Taml")
    # ... and postprocessing transliterates it into Tamil (texts are in descending length,
    # so the translator's length sort keeps this batch as it is).
    out = indictrans.translate(DEVANAGARI_TEXTS, "eng_Latn", "tam_Taml")
    assert out == expected
    joined = "".join(out)
    assert script_share(joined, "tam_Taml") > 0
    assert not any("\u0900" <= ch <= "\u097f" for ch in joined)


def test_indictrans2_placeholders_follow_their_sentence_through_sorting(
    indictrans: IndicTrans2Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An "echo" model (returns the preprocessed text without the tags) shows that each
    # sentence gets its own placeholder map back although batches are sorted by length.
    monkeypatch.setattr(indictrans, "generate_prepared",
                        lambda prepared: [p.split(" ", 2)[2] for p in prepared])
    texts = ["mail a@x.org", "please write to the longer address bob@example.com today",
             "", "see https://example.org/page now"]
    out = indictrans.translate(texts, "eng_Latn", "hin_Deva")
    assert "a@x.org" in out[0] and "bob@example.com" not in out[0]
    assert "bob@example.com" in out[1]
    assert out[2] == ""
    assert "https://example.org/page" in out[3]


def test_indictrans2_is_deterministic_and_checks_tags(
    indictrans: IndicTrans2Translator, models: dict[str, Path]
) -> None:
    first = indictrans.translate(TEXTS, "eng_Latn", "hin_Deva")
    assert first == indictrans.translate(TEXTS, "eng_Latn", "hin_Deva")
    assert len(first) == len(TEXTS) and first[3] == "" and first[6] == ""
    # The M2M-100 tokenizer has no FLORES tags: an IndicTrans2 call must refuse it.
    wrong = IndicTrans2Translator(models["m2m100"], **GREEDY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has no language tag eng_Latn"):
        wrong.translate(["x"], "eng_Latn", "hin_Deva")


def test_m2m100_language_tokens_never_reach_the_text(
    models: dict[str, Path], hf: dict[str, HFSeq2SeqTranslator], tmp_path: Path
) -> None:
    # A checkpoint whose tokenizer config does not list the __xx__ tokens: transformers 5
    # then does not treat them as special, and decoding alone would keep "__hi__".
    import shutil

    from transformers import M2M100Tokenizer

    folder = tmp_path / "m2m-unlisted"
    shutil.copytree(models["m2m100"], folder)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    tok = M2M100Tokenizer(vocab_file=str(folder / "vocab.json"),
                          spm_file=str(folder / "sentencepiece.bpe.model"), src_lang="en")
    assert "__hi__" in tok.decode([tok.get_lang_id("hi")], skip_special_tokens=True)
    tok.save_pretrained(folder)
    plain = HFSeq2SeqTranslator(folder, batch_size=3, **GREEDY)  # type: ignore[arg-type]
    out = plain.translate(TEXTS, "eng_Latn", "hin_Deva")
    assert not any("__" in t for t in out)
    assert out == hf["m2m100"].translate(TEXTS, "eng_Latn", "hin_Deva")
    ct2 = CT2Translator(convert_to_ct2(folder, tmp_path / "m2m-unlisted-ct2"), beam_size=1,
                        max_decoding_length=12, device="cpu")
    assert ct2.translate(TEXTS, "eng_Latn", "hin_Deva") == out


def test_indictrans2_custom_code_that_does_not_import_gives_one_line(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    from personalign.build.translate import TranslatorUnavailable

    def broken(*args: Any, **kwargs: Any) -> Any:
        # What the published configuration_indictrans.py raises under transformers 5.
        raise ModuleNotFoundError("No module named 'transformers.onnx'")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", broken)
    with pytest.raises(TranslatorUnavailable) as err:
        IndicTrans2Translator(models["indictrans2"], **GREEDY)  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message and "transformers.onnx" in message
    assert "transformers<5" in message and str(models["indictrans2"]) in message


def test_backends_satisfy_the_protocol_and_warn_on_truncation(
    hf: dict[str, HFSeq2SeqTranslator], ct2_folders: dict[str, Path],
    indictrans: IndicTrans2Translator, models: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from personalign.build.translate import Translator

    ct2 = CT2Translator(ct2_folders["nllb"], beam_size=1, device="cpu")
    for tr in (hf["nllb"], hf["m2m100"], ct2, indictrans):
        assert isinstance(tr, Translator)
    short = HFSeq2SeqTranslator(models["nllb"], max_input_tokens=4, **GREEDY)  # type: ignore[arg-type]
    with caplog.at_level("WARNING"):
        out = short.translate([TEXTS[0], "a"], "eng_Latn", "hin_Deva")
    assert "1 of 2 inputs are longer than max_input_tokens=4" in caplog.text
    assert len(out) == 2
