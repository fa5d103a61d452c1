import time
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import pytest

from personalign.data.errors import DatasetError
from personalign.data.loaders import fetch_hub, load_dataset, load_hub


def test_hub_folder_loads(fixtures: Path) -> None:
    ds = load_dataset(fixtures / "hub")
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 3}
    assert ds.pair_ids() == ["1", "2", "3"]
    first = ds.by_language("hin_Deva")[0]
    assert first.persona.startswith("दिल्ली")
    assert first.source == "nirdesha:2-shot:nllb-200-3.3B"
    assert ds.by_language("tam_Taml")[1].source == "nirdesha:0-shot:nllb-200-3.3B"
    # line numbers count the blank line 3 of the Hindi file
    assert ds.origin("hin_Deva", "3") == (str(fixtures / "hub" / "nirdesha_hin_Deva.jsonl"), 4)
    assert ds.meta["format"] == "hub-jsonl"
    assert "CC-BY-4.0" in ds.meta["license"]


def test_hub_folder_languages_and_limit(fixtures: Path) -> None:
    ds = load_dataset(fixtures / "hub", languages=["tam"], limit=2)
    assert ds.counts() == {"tam_Taml": 2}
    assert ds.pair_ids() == ["1", "2"]


def test_single_hub_file(fixtures: Path) -> None:
    ds = load_dataset(fixtures / "hub" / "nirdesha_tam_Taml.jsonl")
    assert ds.counts() == {"tam_Taml": 3}


def test_bad_hub_line_names_file_and_line(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("hub")
    path = folder / "nirdesha_tam_Taml.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"indian_context_persona"', '"persona"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert (info.value.path, info.value.line, info.value.record_id) == (str(path), 2, "2")
    assert "missing field 'indian_context_persona'" in str(info.value)

    ds = load_dataset(folder, skip_bad_rows=True)
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 2}
    assert ds.meta["skipped"][0]["line"] == 2


def test_hub_file_name_with_wrong_script(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("hub")
    (folder / "nirdesha_tam_Taml.jsonl").rename(folder / "nirdesha_tam_Deva.jsonl")
    with pytest.raises(DatasetError, match="script Deva but Tamil is written in Taml"):
        load_dataset(folder)


def test_offline_hub_without_cache_fails_fast_with_one_line(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(DatasetError) as info:
        fetch_hub("personalign-test/absent", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE is set" in message
    assert "download it on a connected machine" in message and "pass that folder" in message
    assert time.monotonic() - start < 30  # no waiting on a network (generous bound)


def test_hub_id_through_load_dataset_offline() -> None:
    with pytest.raises(DatasetError, match="cannot fetch dataset personalign-test/absent"):
        load_dataset("personalign-test/absent")


def test_unreachable_hub_falls_back_to_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls: list[dict[str, object]] = []

    def no_network(self: object, repo_id: str, **kwargs: object) -> None:
        assert kwargs.get("timeout") == 3.0  # the probe is time-limited
        raise ConnectionError("Name or service not known")

    def snapshot(repo_id: str, **kwargs: object) -> str:
        calls.append(kwargs)
        raise FileNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", no_network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    with pytest.raises(DatasetError) as info:
        fetch_hub("owner/name", cache_dir=tmp_path, timeout=3.0)
    assert "the Hub did not answer: ConnectionError" in str(info.value)
    assert calls[0]["local_files_only"] is True


def test_hub_download_is_read_as_a_hub_folder(
    monkeypatch: pytest.MonkeyPatch, fixtures: Path
) -> None:
    seen: dict[str, object] = {}

    def snapshot(repo_id: str, **kwargs: object) -> str:
        seen.update(kwargs, repo_id=repo_id)
        return str(fixtures / "hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    ds = load_hub("LingoIITGN/PI-Indic-Align", languages=["hin_Deva"])
    assert ds.counts() == {"hin_Deva": 3}
    assert ds.meta["origin"] == "hf://datasets/LingoIITGN/PI-Indic-Align"
    assert seen["repo_type"] == "dataset"
    assert seen["allow_patterns"] == ["*nirdesha_hin_*.jsonl", "*.md"]
