"""Shared helpers for the data tests: tiny fixture folders and a copy-to-tmp helper."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REAL_VALIDATION = Path("/work/shared/data/pi-indic-align-validation")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def copy_fixture(tmp_path: Path) -> Callable[[str], Path]:
    """Copy ``fixtures/<name>`` into tmp_path so a test can break it."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target

    return copy


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never reach the network: with HF_HUB_OFFLINE only the (empty) cache is used.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
