"""Named datasets: what ``personalign datasets`` lists and ``load_dataset(<name>)`` loads.

- ``pa-authored`` (the default): the team-authored, LLM-assisted benchmark shipped inside
  the package, ``personalign/datasets/pa_authored/<code>.jsonl`` (authoring guide:
  AUTHORING.md there). Whatever languages exist are loaded.
- ``pi-indic-align-validation``: the published human-validation sheets (150 pairs x 12
  languages + English). Found at ``$PERSONALIGN_VALIDATION_DIR``, else
  ``../shared/data/pi-indic-align-validation`` relative to the working directory, else
  relative to the repository checkout.
- ``pi-indic-align``: the full release on the Hugging Face Hub (50K pairs x 12 languages).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from personalign.data import loaders
from personalign.data.errors import DatasetError
from personalign.data.schema import Dataset
from personalign.languages import ENGLISH, INDIC_CODES

DEFAULT_DATASET = "pa-authored"
HUB_ID = "LingoIITGN/PI-Indic-Align"
VALIDATION_ENV = "PERSONALIGN_VALIDATION_DIR"
VALIDATION_FOLDER = Path("..") / "shared" / "data" / "pi-indic-align-validation"

PA_SOURCE = "pa-authored:team-written,LLM-assisted"
PA_PROVENANCE = (
    "personalign team-authored benchmark, LLM-assisted: English written first (25 domains "
    "x 12 pairs, each with an authored hard negative and the reason it does not fit), then "
    "translated into the 12 Indian languages by the same LLM-assisted team (no machine "
    "translation system); no human native speaker has validated the text yet; see "
    "personalign/datasets/pa_authored/AUTHORING.md. Revision 1: even pair numbers carry an "
    "anchored instruction (names one or two details of the persona's situation), odd ones "
    "the original implicit instruction"
)
PA_LICENSE = "CC-BY-4.0"
HUB_PUBLISHED_RECORDS = 600_000  # 50,000 pairs x 12 languages, as published


@dataclass(frozen=True)
class DatasetInfo:
    """One line of ``personalign datasets``.

    ``size`` is the number of records (pair x language) when it can be known without
    downloading (for the hub release: the published count); ``availability`` says whether
    it can be loaded now and, if not, what to do; ``location`` is the folder or hub id.
    """

    name: str
    description: str
    languages: tuple[str, ...]
    size: int | None
    available: bool
    availability: str
    location: str
    license: str


def pa_authored_dir() -> Path:
    """Folder of the embedded pa-authored files inside the installed package."""
    return Path(__file__).resolve().parent.parent / "datasets" / "pa_authored"


def _repo_root() -> Path:
    # src/personalign/data/registry.py -> the checkout holding src/
    return Path(__file__).resolve().parents[3]


def validation_dir() -> Path:
    """Where the validation sheets are; DatasetError naming the places looked at if absent.

    ``$PERSONALIGN_VALIDATION_DIR`` wins when set (and must exist); otherwise the first
    existing of ``<cwd>/../shared/data/pi-indic-align-validation`` and the same path next
    to the repository checkout.
    """
    how = (f"get annotator_validation/language-wise-validation from github.com/aryashah2k/"
           f"PI-Indic-Align and set {VALIDATION_ENV}=<folder>")
    env = os.environ.get(VALIDATION_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path
        raise DatasetError(f"{VALIDATION_ENV} points to a missing folder; {how}", path=path)
    candidates = [Path.cwd() / VALIDATION_FOLDER, _repo_root() / VALIDATION_FOLDER]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    looked = ", ".join(str(p) for p in candidates)
    raise DatasetError(f"the pi-indic-align-validation sheets were not found (looked in "
                       f"{looked}); {how}")


def _count_lines(path: Path) -> int:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        return sum(1 for line in fh if line.strip())


def _pa_info() -> DatasetInfo:
    folder = pa_authored_dir()
    description = "team-authored persona-instruction pairs with hard negatives (default)"
    try:
        files = loaders.authored_files(folder) if folder.is_dir() else {}
    except DatasetError as exc:
        return DatasetInfo(DEFAULT_DATASET, description, (), None, False,
                           f"broken: {exc}", str(folder), PA_LICENSE)
    if not files:
        return DatasetInfo(DEFAULT_DATASET, description, (), 0, False,
                           "missing: no <code>.jsonl files in the package yet",
                           str(folder), PA_LICENSE)
    size = sum(_count_lines(p) for paths in files.values() for p in paths)
    partial = any(len(paths) > 1 or ".part" in paths[0].name for paths in files.values())
    status = "available" + (" (some languages still as .part files)" if partial else "")
    return DatasetInfo(DEFAULT_DATASET, description, tuple(files), size, True, status,
                       str(folder), PA_LICENSE)


def _validation_info() -> DatasetInfo:
    description = "PI-Indic-Align human-validation sheets: 150 pairs, 12 languages + English"
    name = "pi-indic-align-validation"
    try:
        folder = validation_dir()
        sheets, _ = loaders._sheets(folder)
    except DatasetError as exc:
        return DatasetInfo(name, description, (), None, False, f"missing: {exc}",
                           os.environ.get(VALIDATION_ENV, str(VALIDATION_FOLDER)),
                           loaders.VALIDATION_LICENSE)
    ids: set[str] = set()
    rows = 0
    for path in sheets.values():
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                rows += 1
                ids.add((row.get("id") or "").strip())
    languages = (ENGLISH, *sheets) if sheets else ()
    return DatasetInfo(name, description, languages, rows + len(ids), bool(sheets),
                       "available" if sheets else "missing: no sheets in the folder",
                       str(folder), loaders.VALIDATION_LICENSE)


def _hub_info() -> DatasetInfo:
    description = "PI-Indic-Align full release: 50K pairs x 12 languages (no English file)"
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(HUB_ID, repo_type="dataset", local_files_only=True,
                                   allow_patterns=["*nirdesha_*.jsonl"])
        status, available = f"cached at {folder}", True
    except Exception:  # not in the cache: that is all this check needs to know
        status = ("on the Hugging Face Hub: needs network, or download it elsewhere and "
                  "pass the folder")
        available = False
    return DatasetInfo("pi-indic-align", description, INDIC_CODES, HUB_PUBLISHED_RECORDS,
                       available, status, f"hf://datasets/{HUB_ID}", loaders.HUB_LICENSE)


def _load_pa(*, skip_bad_rows: bool, languages: Sequence[str] | None, limit: int | None,
             agreement: str) -> Dataset:
    _no_agreement(DEFAULT_DATASET, agreement)
    folder = pa_authored_dir()
    if not folder.is_dir() or not loaders.authored_files(folder):
        raise DatasetError("the embedded pa-authored dataset has no <code>.jsonl files in this "
                           "installation; reinstall personalign or pass another dataset",
                           path=folder)
    return loaders.load_authored_folder(
        folder, skip_bad_rows=skip_bad_rows, languages=languages, limit=limit,
        name=DEFAULT_DATASET, source=PA_SOURCE, provenance=PA_PROVENANCE, license=PA_LICENSE)


def _load_validation(*, skip_bad_rows: bool, languages: Sequence[str] | None,
                     limit: int | None, agreement: str) -> Dataset:
    return loaders.load_validation_csvs(validation_dir(), skip_bad_rows=skip_bad_rows,
                                        languages=languages, limit=limit, agreement=agreement)


def _load_hub(*, skip_bad_rows: bool, languages: Sequence[str] | None, limit: int | None,
              agreement: str) -> Dataset:
    _no_agreement("pi-indic-align", agreement)
    return loaders.load_hub(HUB_ID, skip_bad_rows=skip_bad_rows, languages=languages,
                            limit=limit)


def _no_agreement(name: str, agreement: str) -> None:
    if agreement != "all":
        raise DatasetError(f"the agreement option applies to human-validation sheets only, "
                           f"not to {name}")


Loader = Callable[..., Dataset]
_REGISTRY: dict[str, tuple[Callable[[], DatasetInfo], Loader]] = {
    DEFAULT_DATASET: (_pa_info, _load_pa),
    "pi-indic-align-validation": (_validation_info, _load_validation),
    "pi-indic-align": (_hub_info, _load_hub),
}


def registered_names() -> list[str]:
    return list(_REGISTRY)


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def dataset_info(name: str) -> DatasetInfo:
    if name not in _REGISTRY:
        raise DatasetError(f"no registered dataset {name!r}; known: "
                           f"{', '.join(registered_names())}")
    return _REGISTRY[name][0]()


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset with its current availability (offline; quick)."""
    return [info() for info, _ in _REGISTRY.values()]


def load_registered(
    name: str,
    *,
    skip_bad_rows: bool = False,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    agreement: str = "all",
) -> Dataset:
    """Load a registered dataset (``load_dataset`` calls this for registered names)."""
    if name not in _REGISTRY:
        raise DatasetError(f"no registered dataset {name!r}; known: "
                           f"{', '.join(registered_names())}")
    return _REGISTRY[name][1](skip_bad_rows=skip_bad_rows, languages=languages, limit=limit,
                              agreement=agreement)
