import json
from collections.abc import Callable
from pathlib import Path

import pytest

from personalign.data import registry
from personalign.data.errors import DatasetError
from personalign.data.loaders import load_authored_folder, load_dataset

from .conftest import REAL_VALIDATION


@pytest.fixture
def pa_dir(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    def point(folder: Path) -> None:
        monkeypatch.setattr(registry, "pa_authored_dir", lambda: folder)

    return point


def test_names_and_default() -> None:
    assert registry.DEFAULT_DATASET == "pa-authored"
    assert registry.registered_names() == [
        "pa-authored", "pi-indic-align-validation", "pi-indic-align"]


def test_pa_authored_from_fixture(fixtures: Path, pa_dir: Callable[[Path], None]) -> None:
    pa_dir(fixtures / "authored")
    ds = load_dataset("pa-authored")
    assert ds.name == "pa-authored"
    assert ds.counts() == {"hin_Deva": 2, "eng_Latn": 2}
    hin = ds.by_language("hin_Deva")[1]
    # domain and negative_reason come from the English record of the same id
    assert hin.domain == "farming"
    assert hin.extra == {"negative_reason": "Corporate-scale design, not a smallholder's question."}
    assert hin.negative is not None and hin.negative.startswith("पाँच सौ")
    assert hin.source == "pa-authored:team-written,LLM-assisted"
    assert ds.has_negatives()
    assert "LLM-assisted" in ds.meta["provenance"]


def test_parts_are_read_in_order_when_the_whole_file_is_absent(fixtures: Path) -> None:
    ds = load_authored_folder(fixtures / "authored_parts")
    assert [r.pair_id for r in ds.records if r.lang == "eng_Latn"] == ["pa-0001", "pa-0002"]
    assert ds.origin("eng_Latn", "pa-0002") == (
        str(fixtures / "authored_parts" / "eng_Latn.part2.jsonl"), 1)
    assert ds.records == load_authored_folder(fixtures / "authored").records


def test_translated_id_missing_in_english(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("authored")
    path = folder / "hin_Deva.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("pa-0002", "pa-0999")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_authored_folder(folder)
    assert (info.value.path, info.value.line, info.value.record_id) == (str(path), 2, "pa-0999")
    assert "is not in eng_Latn.jsonl" in str(info.value)


def test_unknown_key_and_stray_file(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("authored")
    path = folder / "eng_Latn.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[0])
    obj["negativ_reason"] = obj.pop("negative_reason")
    lines[0] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="unknown key\\(s\\) 'negativ_reason'") as info:
        load_authored_folder(folder)
    assert info.value.line == 1

    (folder / "notes.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not a language file"):
        load_authored_folder(folder)


def test_only_translated_languages_work_without_english(
    copy_fixture: Callable[[str], Path],
) -> None:
    folder = copy_fixture("authored")
    (folder / "eng_Latn.jsonl").unlink()
    ds = load_authored_folder(folder)
    assert ds.counts() == {"hin_Deva": 2}
    assert ds.records[0].domain is None


def test_pa_authored_info_and_missing_files(
    fixtures: Path, tmp_path: Path, pa_dir: Callable[[Path], None]
) -> None:
    pa_dir(fixtures / "authored")
    info = registry.dataset_info("pa-authored")
    assert info.available and info.size == 4
    assert info.languages == ("hin_Deva", "eng_Latn")
    pa_dir(tmp_path)
    info = registry.dataset_info("pa-authored")
    assert not info.available and info.availability.startswith("missing")
    with pytest.raises(DatasetError, match=r"no <code>\.jsonl files"):
        load_dataset("pa-authored")


def test_validation_dir_from_env(fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.VALIDATION_ENV, str(fixtures / "validation"))
    ds = load_dataset("pi-indic-align-validation")
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 3, "eng_Latn": 3}
    info = registry.dataset_info("pi-indic-align-validation")
    assert info.available and info.size == 9  # 6 sheet rows + 3 English
    assert info.languages == ("eng_Latn", "hin_Deva", "tam_Taml")


def test_validation_dir_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(registry.VALIDATION_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="PERSONALIGN_VALIDATION_DIR points to a missing"):
        load_dataset("pi-indic-align-validation")
    monkeypatch.delenv(registry.VALIDATION_ENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_repo_root", lambda: tmp_path)
    with pytest.raises(DatasetError, match="sheets were not found") as info:
        registry.validation_dir()
    assert "PERSONALIGN_VALIDATION_DIR" in str(info.value)
    assert not registry.dataset_info("pi-indic-align-validation").available


@pytest.mark.skipif(not REAL_VALIDATION.is_dir(), reason="shared validation sheets absent")
def test_validation_dir_found_relative_to_the_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(registry.VALIDATION_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # not from the working directory: from the checkout
    if (registry._repo_root() / registry.VALIDATION_FOLDER).resolve() != REAL_VALIDATION:
        pytest.skip("checkout is not next to ../shared")
    assert registry.validation_dir() == REAL_VALIDATION


def test_hub_entry_is_listed_without_network() -> None:
    by_name = {info.name: info for info in registry.list_datasets()}
    hub = by_name["pi-indic-align"]
    assert hub.size == 600_000 and len(hub.languages) == 12
    assert hub.location == "hf://datasets/LingoIITGN/PI-Indic-Align"
    with pytest.raises(DatasetError, match="human-validation sheets only"):
        load_dataset("pi-indic-align", agreement="full")


def test_unknown_name() -> None:
    with pytest.raises(DatasetError, match="not a registered name \\(pa-authored"):
        load_dataset("no-such-dataset")
    with pytest.raises(DatasetError, match="no registered dataset"):
        registry.load_registered("no-such-dataset")
