"""Reading and writing datasets.

Formats read (``load_dataset`` detects which):

- **own format** (``save_dataset`` writes it): a Parquet or JSONL file whose rows carry the
  ``Record`` fields ``pair_id, lang, persona, instruction`` and optionally ``negative,
  domain, source, extra``. Dataset metadata (name, provenance, license, ...) lives in the
  Parquet schema metadata under the key ``personalign``, or for JSONL in a sidecar file
  ``<stem>.meta.json`` next to it (``data.jsonl`` -> ``data.meta.json``). In Parquet the
  ``extra`` column holds the extras as a JSON string.
- **hub release** (PI-Indic-Align): a folder with ``nirdesha_<lang>_<Script>.jsonl`` files
  (fields ``id, indian_context_persona, indian_context_instruction, description``; language
  from the file name), or a hub id such as ``"LingoIITGN/PI-Indic-Align"`` fetched with
  ``huggingface_hub.snapshot_download`` into the Hugging Face cache.
- **human-validation sheets**: a folder of ``<Language>.csv`` files (columns ``id,
  ENG_indian_context, indian_context, expert_1, expert_2``), giving the English source
  records once plus one record per sheet language.
- **authored folder** (the embedded ``pa-authored`` layout): ``<code>.jsonl`` per language,
  English with ``id, domain, persona, instruction, negative, negative_reason``, other
  languages with ``id, persona, instruction, negative`` (domain and reason from English).

Line numbers in errors are 1-based: the line of a JSONL file; for a CSV the line on which
the row starts (header = line 1); for Parquet the row number.

Skipping bad rows (``skip_bad_rows=True``) drops only the bad row's record in its own
language; the same pair stays in the other languages. Cross-lingual tasks therefore see
ids missing in one language and use, for each language pair, the ids present in both.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from personalign.atomic import atomic_write
from personalign.data.errors import DatasetError
from personalign.data.schema import RECORD_FIELDS, Dataset, Record
from personalign.languages import ALL_CODES, BY_CODE, ENGLISH, INDIC_CODES, resolve

OWN_FORMAT_VERSION = 1
PARQUET_META_KEY = b"personalign"
SIDECAR_SUFFIX = ".meta.json"

HUB_FILE_RE = re.compile(r"^nirdesha_([A-Za-z]{2,3})_([A-Za-z]{4})\.jsonl$")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
HUB_PROVENANCE = (
    "PI-Indic-Align (arXiv 2601.10205): English persona-instruction pairs synthesized with "
    "GPT-4o-mini (0-shot / 2-shot), translated into 12 Indian languages with NLLB-200 3.3B"
)
HUB_LICENSE = "CC-BY-4.0 (dataset card of LingoIITGN/PI-Indic-Align)"
TRANSLATION_TAG = "nllb-200-3.3B"

VALIDATION_COLUMNS: tuple[str, ...] = (
    "id", "ENG_indian_context", "indian_context", "expert_1", "expert_2",
)
RATINGS: tuple[str, ...] = ("Completely Agree", "Partially Agree", "Do Not Agree")
FULL_AGREEMENT = "Completely Agree"
AGREEMENT_MODES: tuple[str, ...] = ("all", "full-per-language", "full-every-language")
VALIDATION_PROVENANCE = (
    "Human-validation sample of PI-Indic-Align (arXiv 2601.10205): 150 English pairs "
    "(GPT-4o-mini synthesis) with their NLLB-200 3.3B translations, each translation rated "
    "by two experts; repository aryashah2k/PI-Indic-Align, folder annotator_validation/"
)
VALIDATION_LICENSE = "CC-BY-4.0 (dataset card); repository Apache-2.0"

_OWN_REQUIRED = ("pair_id", "lang", "persona", "instruction")
_AUTHORED_ENGLISH_KEYS = ("id", "domain", "persona", "instruction", "negative", "negative_reason")
_AUTHORED_TRANSLATED_KEYS = ("id", "persona", "instruction", "negative")
_AUTHORED_PART_RE = re.compile(r"^(?P<code>[a-z]{3}_[A-Z][a-z]{3})\.part(?P<n>\d+)\.jsonl$")


# --------------------------------------------------------------------------------------
# shared helpers


class _Builder:
    """Collects records; raises or records bad rows; refuses duplicate (lang, pair_id)."""

    def __init__(self, skip_bad_rows: bool) -> None:
        self.skip_bad_rows = skip_bad_rows
        self.records: list[Record] = []
        self.origins: dict[tuple[str, str], tuple[str, int]] = {}
        self.skipped: list[dict[str, Any]] = []

    def bad(self, error: DatasetError) -> None:
        if not self.skip_bad_rows:
            raise error
        self.skipped.append(error.to_dict())

    def add(self, record: Record, path: str, line: int) -> None:
        key = (record.lang, record.pair_id)
        first = self.origins.get(key)
        if first is not None:
            self.bad(DatasetError(
                f"duplicate pair id {record.pair_id!r} in {record.lang} (first at {first[0]}, "
                f"line {first[1]}); give every pair one id per language",
                path=path, line=line, record_id=record.pair_id,
            ))
            return
        self.records.append(record)
        self.origins[key] = (path, line)

    def dataset(self, name: str, meta: dict[str, Any]) -> Dataset:
        meta = dict(meta)
        meta["skipped"] = list(meta.get("skipped", [])) + self.skipped
        return Dataset(name, self.records, meta, self.origins)


def _normalise_languages(languages: Sequence[str] | None) -> list[str] | None:
    """Resolve codes / names / aliases to canonical codes (in table order); None = all."""
    if languages is None:
        return None
    out: set[str] = set()
    for lang in languages:
        try:
            out.add(resolve(lang).code)
        except ValueError as exc:
            raise DatasetError(f"{exc} (in the languages option)") from exc
    return [code for code in ALL_CODES if code in out]


def natural_id_key(pair_id: str) -> tuple[int, int, str]:
    """Sort key putting numeric ids in numeric order ("2" < "10") before other ids."""
    return (0, int(pair_id), pair_id) if pair_id.isdigit() else (1, 0, pair_id)


def _apply_filters(ds: Dataset, languages: list[str] | None, limit: int | None) -> Dataset:
    """Keep the requested languages, then the ``limit`` smallest pair ids (natural order)."""
    if languages is not None:
        keep = set(languages)
        ds = Dataset(ds.name, [r for r in ds.records if r.lang in keep], ds.meta, ds.origins)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        ids = set(sorted(ds.pair_ids(), key=natural_id_key)[:limit])
        ds = Dataset(ds.name, [r for r in ds.records if r.pair_id in ids], ds.meta, ds.origins)
        ds.meta["limit"] = limit
    return ds


def _iter_jsonl(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every non-blank line; undecodable UTF-8 -> error."""
    try:
        with path.open("r", encoding="utf-8") as fh:
            for number, text in enumerate(fh, start=1):
                if text.strip():
                    yield number, text
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"file is not valid UTF-8 ({exc.reason} at byte {exc.start}); re-save it as UTF-8",
            path=path,
        ) from exc
    except OSError as exc:
        raise DatasetError(f"cannot read file: {exc.strerror or exc}", path=path) from exc


def _parse_json_object(text: str, what: str, path: str | Path, line: int,
                       record_id: str | None = None) -> dict[str, Any] | DatasetError:
    """Parse one JSON object; return a DatasetError (not raised) if it is not one."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return DatasetError(
            f"{what} is not valid JSON ({exc.msg} at character {exc.pos + 1}); fix or remove "
            "the row, or load with skip_bad_rows=True to leave it out",
            path=path, line=line, record_id=record_id,
        )
    if not isinstance(obj, dict):
        return DatasetError(
            f"{what} must be a JSON object, got {type(obj).__name__}",
            path=path, line=line, record_id=record_id,
        )
    return obj


def _text_field(obj: dict[str, Any], key: str, *, required: bool, path: str | Path, line: int,
                record_id: str | None, what: str = "") -> str | DatasetError | None:
    """A text field: a non-blank string (required), or absent/null (optional)."""
    value = obj.get(key)
    where = f" in {what}" if what else ""
    if value is None:
        if required:
            return DatasetError(f"missing field {key!r}{where}; every record needs it",
                                path=path, line=line, record_id=record_id)
        return None
    if not isinstance(value, str):
        return DatasetError(f"field {key!r}{where} must be a string, got "
                            f"{type(value).__name__}", path=path, line=line, record_id=record_id)
    if not value.strip():
        return DatasetError(f"field {key!r}{where} is empty; fill it in or drop the record",
                            path=path, line=line, record_id=record_id)
    return value


def _id_value(value: Any, key: str, path: str | Path, line: int) -> str | DatasetError:
    """Pair ids are strings; JSON integers are accepted and written in decimal."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        if value is None:
            return DatasetError(f"missing field {key!r}; every record needs an id",
                                path=path, line=line)
        return DatasetError(f"field {key!r} must be a string or an integer, got "
                            f"{type(value).__name__}", path=path, line=line)
    text = str(value).strip()
    if not text:
        return DatasetError(f"field {key!r} is empty; every record needs an id",
                            path=path, line=line)
    return text





# --------------------------------------------------------------------------------------
# own format


def sidecar_path(path: str | Path) -> Path:
    """Metadata sidecar of an own-format JSONL file: ``data.jsonl`` -> ``data.meta.json``."""
    path = Path(path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _metadata(ds: Dataset) -> dict[str, Any]:
    return {"format": "personalign", "version": OWN_FORMAT_VERSION, "name": ds.name,
            "meta": ds.meta}


def _json_dumps(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc


def save_dataset(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` in the own format; the suffix picks Parquet (``.parquet``) or JSONL
    (``.jsonl``, plus the ``.meta.json`` sidecar). Each file is written atomically (temp
    file + ``os.replace``); for JSONL the sidecar is replaced first, then the data.
    Records keep their order. Returns the data file's path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".jsonl"):
        raise ValueError(f"cannot save to {path}: use a .parquet or .jsonl file name")
    metadata = _json_dumps(_metadata(ds), "dataset metadata (Dataset.meta)")
    if suffix == ".jsonl":
        lines = [
            _json_dumps({key: getattr(r, key) for key in RECORD_FIELDS},
                        f"record {r.pair_id} ({r.lang})") + "\n"
            for r in ds.records
        ]
        atomic_write(sidecar_path(path),
                      lambda tmp: tmp.write_text(metadata + "\n", encoding="utf-8"))
        atomic_write(path, lambda tmp: tmp.write_text("".join(lines), encoding="utf-8"))
        return path

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {key: [] for key in RECORD_FIELDS}
    for r in ds.records:
        for key in RECORD_FIELDS:
            value = getattr(r, key)
            if key == "extra":
                value = _json_dumps(value, f"extra of record {r.pair_id} ({r.lang})")
            columns[key].append(value)
    schema = pa.schema([pa.field(key, pa.string(), nullable=key not in _OWN_REQUIRED)
                        for key in RECORD_FIELDS],
                       metadata={PARQUET_META_KEY: metadata.encode("utf-8")})
    table = pa.Table.from_pydict(columns, schema=schema)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def _own_record(obj: dict[str, Any], path: Path, line: int) -> Record | DatasetError:
    unknown = sorted(set(obj) - set(RECORD_FIELDS))
    if unknown:
        return DatasetError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join(RECORD_FIELDS)} (put anything else under 'extra')",
            path=path, line=line,
        )
    pair_id = _id_value(obj.get("pair_id"), "pair_id", path, line)
    if isinstance(pair_id, DatasetError):
        return pair_id
    lang_value = obj.get("lang")
    if not isinstance(lang_value, str) or not lang_value.strip():
        return DatasetError("missing or empty field 'lang'; give a code such as hin_Deva",
                            path=path, line=line, record_id=pair_id)
    try:
        lang = resolve(lang_value).code
    except ValueError as exc:
        return DatasetError(str(exc), path=path, line=line, record_id=pair_id)
    texts: dict[str, str | None] = {}
    for key in ("persona", "instruction", "negative", "domain", "source"):
        value = _text_field(obj, key, required=key in _OWN_REQUIRED, path=path, line=line,
                            record_id=pair_id)
        if isinstance(value, DatasetError):
            return value
        texts[key] = value
    extra = obj.get("extra")
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        return DatasetError(f"field 'extra' must be a JSON object, got {type(extra).__name__}",
                            path=path, line=line, record_id=pair_id)
    persona, instruction = texts["persona"], texts["instruction"]
    assert persona is not None and instruction is not None  # required above
    return Record(pair_id, lang, persona, instruction, texts["negative"], texts["domain"],
                  texts["source"], extra)


def _read_metadata_json(text: str, where: Path) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"dataset metadata is not valid JSON ({exc.msg}); fix or delete it",
                           path=where) from exc
    if not isinstance(data, dict) or not isinstance(data.get("meta", {}), dict):
        raise DatasetError("dataset metadata must be an object with 'name' and 'meta'",
                           path=where)
    return data


def load_own(path: str | Path, *, skip_bad_rows: bool = False) -> Dataset:
    """Read an own-format Parquet or JSONL file (see the module docstring)."""
    path = Path(path)
    builder = _Builder(skip_bad_rows)
    metadata: dict[str, Any] = {}
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"cannot read Parquet file: {exc}", path=path) from exc
        raw = (table.schema.metadata or {}).get(PARQUET_META_KEY)
        if raw is not None:
            metadata = _read_metadata_json(raw.decode("utf-8"), path)
        missing = [key for key in _OWN_REQUIRED if key not in table.column_names]
        if missing:
            raise DatasetError(
                f"missing column(s) {', '.join(missing)}; an own-format file needs "
                f"{', '.join(_OWN_REQUIRED)}", path=path)
        for row_number, row in enumerate(table.to_pylist(), start=1):
            extra = row.get("extra")
            if isinstance(extra, str):
                parsed = _parse_json_object(extra, "column 'extra'", path, row_number)
                if isinstance(parsed, DatasetError):
                    builder.bad(parsed)
                    continue
                row["extra"] = parsed
            record = _own_record(row, path, row_number)
            if isinstance(record, DatasetError):
                builder.bad(record)
            else:
                builder.add(record, str(path), row_number)
        fmt = "personalign-parquet"
    else:
        side = sidecar_path(path)
        if side.is_file():
            metadata = _read_metadata_json(side.read_text(encoding="utf-8"), side)
        if not path.is_file():
            raise DatasetError("no such file", path=path)
        for number, text in _iter_jsonl(path):
            obj = _parse_json_object(text, "line", path, number)
            record = obj if isinstance(obj, DatasetError) else _own_record(obj, path, number)
            if isinstance(record, DatasetError):
                builder.bad(record)
            else:
                builder.add(record, str(path), number)
        fmt = "personalign-jsonl"
    meta = dict(metadata.get("meta", {}))
    meta.setdefault("origin", str(path))
    meta["path"] = str(path)
    meta["format"] = fmt
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else path.stem
    return builder.dataset(str(name), meta)


# --------------------------------------------------------------------------------------
# hub release (nirdesha_<lang>_<Script>.jsonl)


@functools.lru_cache(maxsize=256)  # a release has a handful of distinct descriptions
def _shot(description: str | None) -> str:
    """"2-shot instruction data synthesis" -> "2-shot"; unknown forms kept as written."""
    if not description:
        return "unknown"
    found = re.search(r"(\d+)\s*-?\s*shot", description, flags=re.IGNORECASE)
    return f"{found.group(1)}-shot" if found else description.strip()


def hub_file_language(path: Path) -> str:
    """Language code of a ``nirdesha_<lang>_<Script>.jsonl`` file; DatasetError otherwise."""
    found = HUB_FILE_RE.match(path.name)
    if found is None:
        raise DatasetError("file name does not follow nirdesha_<lang>_<Script>.jsonl "
                           "(e.g. nirdesha_hin_Deva.jsonl)", path=path)
    try:
        lang = resolve(found.group(1))
    except ValueError as exc:
        raise DatasetError(f"{exc} (from the file name)", path=path) from exc
    if found.group(2).lower() != lang.script.lower():
        raise DatasetError(f"the file name says script {found.group(2)} but {lang.name} is "
                           f"written in {lang.script} ({lang.code}); rename the file",
                           path=path)
    return lang.code


def _hub_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob("nirdesha_*.jsonl")):
        code = hub_file_language(path)
        if code in files:
            raise DatasetError(f"two files for {code}: {files[code]} and {path}; keep one",
                               path=folder)
        files[code] = path
    return files


def load_hub_folder(
    folder: str | Path,
    *,
    skip_bad_rows: bool = False,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    origin: str | None = None,
) -> Dataset:
    """Read the hub release layout: ``nirdesha_<lang>_<Script>.jsonl`` files anywhere under
    ``folder`` (or ``folder`` may be one such file). ``source`` of each record is
    ``"nirdesha:<k>-shot:nllb-200-3.3B"`` (synthesis mode from ``description``, then the
    machine translation)."""
    folder = Path(folder)
    codes = _normalise_languages(languages)
    files = {hub_file_language(folder): folder} if folder.is_file() else _hub_files(folder)
    if not files:
        raise DatasetError("no nirdesha_<lang>_<Script>.jsonl files found", path=folder)
    builder = _Builder(skip_bad_rows)
    for code in ALL_CODES:
        path = files.get(code)
        if path is None or (codes is not None and code not in codes):
            continue
        for number, text in _iter_jsonl(path):
            obj = _parse_json_object(text, "line", path, number)
            if isinstance(obj, DatasetError):
                builder.bad(obj)
                continue
            record = _hub_record(obj, code, path, number)
            if isinstance(record, DatasetError):
                builder.bad(record)
            else:
                builder.add(record, str(path), number)
    meta = {
        "provenance": HUB_PROVENANCE,
        "license": HUB_LICENSE,
        "origin": origin or str(folder),
        "path": str(folder),
        "format": "hub-jsonl",
        "files": {code: str(path) for code, path in files.items()},
    }
    ds = builder.dataset("pi-indic-align", meta)
    return _apply_filters(ds, codes, limit)


def _hub_record(obj: dict[str, Any], code: str, path: Path, line: int) -> Record | DatasetError:
    pair_id = _id_value(obj.get("id"), "id", path, line)
    if isinstance(pair_id, DatasetError):
        return pair_id
    texts: list[str] = []
    for key in ("indian_context_persona", "indian_context_instruction"):
        value = _text_field(obj, key, required=True, path=path, line=line, record_id=pair_id)
        if isinstance(value, DatasetError):
            return value
        assert value is not None
        texts.append(value)
    description = obj.get("description")
    shot = _shot(description if isinstance(description, str) else None)
    source = f"nirdesha:{shot}" if code == ENGLISH else f"nirdesha:{shot}:{TRANSLATION_TAG}"
    return Record(pair_id, code, texts[0], texts[1], source=source)


def _hub_offline() -> bool:
    # The variable as set now wins; huggingface_hub's constant froze it at import time.
    value = os.environ.get("HF_HUB_OFFLINE", "").strip()
    if value:
        return value.upper() in {"1", "ON", "YES", "TRUE"}
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fetch_hub(
    repo_id: str,
    *,
    languages: Sequence[str] | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    timeout: float = 10.0,
) -> Path:
    """Download (or find in the Hugging Face cache) the hub release files of ``repo_id``.

    Only the ``nirdesha_*.jsonl`` files of the requested languages (and Markdown files)
    are fetched. Never hangs: with ``HF_HUB_OFFLINE`` set only the cache is used; otherwise
    a metadata request with a ``timeout``-second limit checks that the Hub answers, and if
    it does not the cache is used. If neither works, DatasetError says how to get the files.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    codes = _normalise_languages(languages)
    wanted = [c for c in INDIC_CODES if codes is None or c in codes]
    patterns = [f"*nirdesha_{BY_CODE[c].iso639_3}_*.jsonl" for c in wanted] + ["*.md"]
    how = (f"download it on a connected machine (hf download {repo_id} --repo-type dataset "
           "--local-dir <folder>) and pass that folder instead")
    offline = _hub_offline()
    why = "HF_HUB_OFFLINE is set" if offline else ""
    if not offline:
        try:
            HfApi().dataset_info(repo_id, revision=revision, timeout=timeout)
        except (RepositoryNotFoundError, GatedRepoError) as exc:
            raise DatasetError(f"the Hugging Face Hub has no accessible dataset {repo_id!r} "
                               f"({_one_line(exc)}); check the id, or log in if it is "
                               "gated") from exc
        except Exception as exc:  # network down, DNS, timeout, server error: try the cache
            offline = True
            why = f"the Hub did not answer: {_one_line(exc)}"
    try:
        folder = snapshot_download(
            repo_id, repo_type="dataset", revision=revision, cache_dir=cache_dir,
            allow_patterns=patterns, local_files_only=offline, etag_timeout=timeout,
        )
    except Exception as exc:
        reason = why or _one_line(exc)
        raise DatasetError(f"cannot fetch dataset {repo_id} from the Hugging Face Hub "
                           f"({reason}) and no cached copy was found; {how}") from exc
    return Path(str(folder))


def load_hub(
    repo_id: str,
    *,
    skip_bad_rows: bool = False,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    timeout: float = 10.0,
) -> Dataset:
    """``fetch_hub`` then ``load_hub_folder``; ``meta["origin"]`` is ``hf://datasets/<id>``."""
    folder = fetch_hub(repo_id, languages=languages, revision=revision, cache_dir=cache_dir,
                       timeout=timeout)
    return load_hub_folder(folder, skip_bad_rows=skip_bad_rows, languages=languages,
                           limit=limit, origin=f"hf://datasets/{repo_id}")


# --------------------------------------------------------------------------------------
# human-validation sheets (<Language>.csv)


def sheet_language(path: Path) -> str | None:
    """Language code of a validation sheet from its name: ``Hindi.csv``, ``hin_Deva.csv``
    or the upstream ``Nirdesha_Multilingual_Validation - Hindi.csv``; None if unknown."""
    stem = path.stem.rsplit(" - ", 1)[-1].strip()
    try:
        return resolve(stem).code
    except ValueError:
        return None


def _read_header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except (UnicodeDecodeError, csv.Error, OSError):
        return []


def is_validation_sheet(path: Path) -> bool:
    """True for a CSV whose header has every validation column."""
    return path.suffix.lower() == ".csv" and set(VALIDATION_COLUMNS) <= set(_read_header(path))


def _sheets(target: Path) -> tuple[dict[str, Path], list[str]]:
    """Sheets by language code, and names of CSV files that are not sheets (ignored)."""
    if target.is_file():
        candidates = [target]
    else:
        candidates = sorted(p for p in target.iterdir() if p.suffix.lower() == ".csv")
    sheets: dict[str, Path] = {}
    ignored: list[str] = []
    for path in candidates:
        code = sheet_language(path)
        if not is_validation_sheet(path):
            if code is not None:
                raise DatasetError(
                    f"validation sheet lacks column(s) "
                    f"{', '.join(c for c in VALIDATION_COLUMNS if c not in _read_header(path))};"
                    f" expected header {','.join(VALIDATION_COLUMNS)}", path=path, line=1)
            ignored.append(path.name)
            continue
        if code is None:
            raise DatasetError("cannot tell the sheet's language from its file name; name it "
                               "<Language>.csv, e.g. Hindi.csv", path=path)
        if code == ENGLISH:
            raise DatasetError("a validation sheet is per translated language; English comes "
                               "from the ENG_indian_context column of every sheet", path=path)
        if code in sheets:
            raise DatasetError(f"two sheets for {code}: {sheets[code].name} and {path.name}; "
                               "keep one", path=target)
        sheets[code] = path
    return sheets, ignored


def _rating(value: str, column: str, path: Path, line: int, pid: str) -> str | DatasetError:
    normal = " ".join(value.split()).lower()
    for rating in RATINGS:
        if normal == rating.lower():
            return rating
    return DatasetError(f"{column} rating {value!r} is not one of {', '.join(RATINGS)}",
                        path=path, line=line, record_id=pid)


def _context(text: str, column: str, path: Path, line: int, pid: str,
             check_id: bool) -> tuple[str, str, str | None] | DatasetError:
    """(persona, instruction, description) from a JSON context cell."""
    obj = _parse_json_object(text, f"column {column}", path, line, pid)
    if isinstance(obj, DatasetError):
        return obj
    texts: list[str] = []
    for key in ("indian_context_persona", "indian_context_instruction"):
        value = _text_field(obj, key, required=True, path=path, line=line, record_id=pid,
                            what=f"column {column}")
        if isinstance(value, DatasetError):
            return value
        assert value is not None
        texts.append(value)
    if check_id and "id" in obj and str(obj["id"]).strip() != pid:
        return DatasetError(f"column {column} carries id {obj['id']!r} but the row's id is "
                            f"{pid!r}; the sheet rows are misaligned", path=path, line=line,
                            record_id=pid)
    description = obj.get("description")
    return texts[0], texts[1], description if isinstance(description, str) else None


def _csv_rows(path: Path, builder: _Builder) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(start_line, row)`` of a sheet; malformed CSV stops the file (reported)."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            while True:
                start = reader.line_num + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    builder.bad(DatasetError(f"malformed CSV ({exc}); the rest of the file "
                                             "was not read", path=path, line=start))
                    return
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    builder.bad(DatasetError(
                        f"row has {len(cells)} cells but the header has {len(header)}; "
                        "check the quoting of the JSON cells", path=path, line=start,
                        record_id=(cells[0].strip() or None) if cells else None))
                    continue
                yield start, dict(zip(header, cells, strict=True))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"file is not valid UTF-8 ({exc.reason}); re-save it as UTF-8",
                           path=path) from exc


def load_validation_csvs(
    folder: str | Path,
    *,
    skip_bad_rows: bool = False,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    agreement: str = "all",
) -> Dataset:
    """Read human-validation sheets: English records once (lang eng_Latn, from
    ``ENG_indian_context``) plus one record per sheet language (from ``indian_context``).

    - ``pair_id`` is the ``id`` column as written ("1" .. "150").
    - Each language record keeps ``extra = {"expert_1": rating, "expert_2": rating}``.
    - The English text of an id must be identical in every sheet (13-way parallel). If it
      is not: DatasetError naming the sheets; with ``skip_bad_rows`` the most common version
      is kept and the id is dropped from the languages of the disagreeing sheets.
    - A bad cell drops only what it feeds: a bad ``indian_context`` or rating drops the
      language record, a bad ``ENG_indian_context`` drops that sheet's English copy (the
      English record still comes from the other sheets).
    - ``agreement``: "all" keeps every row; "full-per-language" (alias "full") keeps a
      language record only if both experts rated it "Completely Agree" in that sheet, and
      English records for the ids kept in at least one language; "full-every-language"
      keeps only ids rated "Completely Agree" by both experts in every loaded sheet (11 of
      150 ids in the published sheets), in all languages. Ratings count even for rows whose
      text was skipped as malformed.
    - ``languages``: only the sheets of these languages are read (all sheets when only
      English is asked for).
    """
    target = Path(folder)
    if agreement == "full":
        agreement = "full-per-language"
    if agreement not in AGREEMENT_MODES:
        raise DatasetError(f"unknown agreement mode {agreement!r}; use one of "
                           f"{', '.join(AGREEMENT_MODES)} (or 'full')")
    if not target.exists():
        raise DatasetError("no such file or folder", path=target)
    codes = _normalise_languages(languages)
    sheets, ignored = _sheets(target)
    if not sheets:
        raise DatasetError(
            f"no validation sheets (<Language>.csv with columns {','.join(VALIDATION_COLUMNS)})",
            path=target)
    wanted_sheets = [c for c in INDIC_CODES if c in sheets and (
        codes is None or c in codes or codes == [ENGLISH])]
    builder = _Builder(skip_bad_rows)
    # id -> list of (english texts, sheet code, path, line)
    english: dict[str, list[tuple[tuple[str, str, str | None], str, Path, int]]] = {}
    ratings: dict[tuple[str, str], tuple[str, str]] = {}
    pending: list[tuple[Record, Path, int]] = []
    for code in wanted_sheets:
        path = sheets[code]
        for line, row in _csv_rows(path, builder):
            pid = row["id"].strip()
            if not pid:
                builder.bad(DatasetError("empty id; every row needs the pair id",
                                         path=path, line=line))
                continue
            eng = _context(row["ENG_indian_context"], "ENG_indian_context", path, line, pid,
                           check_id=False)
            if isinstance(eng, DatasetError):
                builder.bad(eng)
            else:
                english.setdefault(pid, []).append((eng, code, path, line))
            r1 = _rating(row["expert_1"], "expert_1", path, line, pid)
            r2 = _rating(row["expert_2"], "expert_2", path, line, pid)
            if isinstance(r1, str) and isinstance(r2, str):
                ratings[(code, pid)] = (r1, r2)
            local = _context(row["indian_context"], "indian_context", path, line, pid,
                             check_id=True)
            problem = next((x for x in (local, r1, r2) if isinstance(x, DatasetError)), None)
            if problem is not None:
                builder.bad(problem)
                continue
            assert not isinstance(local, DatasetError)
            persona, instruction, description = local
            source = f"nirdesha:{_shot(description)}:{TRANSLATION_TAG}"
            record = Record(pid, code, persona, instruction, source=source,
                            extra={"expert_1": r1, "expert_2": r2})
            pending.append((record, path, line))

    # The English source: one version per id, identical across sheets.
    dropped: set[tuple[str, str]] = set()
    english_records: list[tuple[Record, Path, int]] = []
    mismatches: list[dict[str, Any]] = []
    for pid in sorted(english, key=natural_id_key):
        copies = english[pid]
        versions = Counter(texts for texts, _, _, _ in copies)
        chosen = versions.most_common(1)[0][0]  # ties: the first sheet's version
        for texts, code, path, line in copies:
            if texts == chosen:
                continue
            first = next(c for c in copies if c[0] == chosen)
            field_name = "persona" if texts[0] != chosen[0] else (
                "instruction" if texts[1] != chosen[1] else "description")
            error = DatasetError(
                f"the English source ({field_name}) differs from {first[2].name} line "
                f"{first[3]}; the sheets must be 13-way parallel: fix the sheet, or load with "
                f"skip_bad_rows=True to drop this pair in {code}",
                path=path, line=line, record_id=pid)
            builder.bad(error)
            mismatches.append(error.to_dict())
            dropped.add((code, pid))
        _, code, path, line = next(c for c in copies if c[0] == chosen)
        persona, instruction, description = chosen
        english_records.append((Record(pid, ENGLISH, persona, instruction,
                                       source=f"nirdesha:{_shot(description)}"), path, line))

    keep_lang = codes is None or ENGLISH in codes
    for record, path, line in (english_records if keep_lang else []) + pending:
        if (record.lang, record.pair_id) not in dropped:
            builder.add(record, str(path), line)

    meta: dict[str, Any] = {
        "provenance": VALIDATION_PROVENANCE,
        "license": VALIDATION_LICENSE,
        "origin": str(target),
        "path": str(target),
        "format": "validation-csv",
        "agreement": agreement,
        "sheets": {code: sheets[code].name for code in wanted_sheets},
        "ignored_files": ignored,
        "parallel_mismatches": mismatches,
    }
    ds = builder.dataset("pi-indic-align-validation", meta)
    ds = _agreement_filter(ds, agreement, ratings, wanted_sheets)
    return _apply_filters(ds, codes, limit)


def _agreement_filter(ds: Dataset, mode: str, ratings: dict[tuple[str, str], tuple[str, str]],
                      sheets: list[str]) -> Dataset:
    if mode == "all":
        return ds
    full = (FULL_AGREEMENT, FULL_AGREEMENT)
    if mode == "full-per-language":
        keep = [r for r in ds.records
                if r.lang == ENGLISH or ratings.get((r.lang, r.pair_id)) == full]
        kept_ids = {r.pair_id for r in keep if r.lang != ENGLISH}
        keep = [r for r in keep if r.lang != ENGLISH or r.pair_id in kept_ids]
    else:  # full-every-language
        ids = {r.pair_id for r in ds.records}
        agreed = {pid for pid in ids if all(ratings.get((c, pid)) == full for c in sheets)}
        keep = [r for r in ds.records if r.pair_id in agreed]
    return Dataset(ds.name, keep, ds.meta, ds.origins)


# --------------------------------------------------------------------------------------
# authored folder (<code>.jsonl; the embedded pa-authored layout)


def authored_files(folder: Path) -> dict[str, list[Path]]:
    """Per language code, the file(s) to read: ``<code>.jsonl``, or when that is absent its
    parts ``<code>.part<N>.jsonl`` in increasing N (read as one file)."""
    whole: dict[str, Path] = {}
    parts: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        if path.stem in BY_CODE:
            whole[path.stem] = path
            continue
        found = _AUTHORED_PART_RE.match(path.name)
        if found is not None and found.group("code") in BY_CODE:
            parts.setdefault(found.group("code"), []).append((int(found.group("n")), path))
            continue
        raise DatasetError("not a language file: name it <code>.jsonl with a code such as "
                           "hin_Deva (or <code>.part<N>.jsonl)", path=path)
    files: dict[str, list[Path]] = {}
    for code in ALL_CODES:
        if code in whole:
            files[code] = [whole[code]]
        elif code in parts:
            files[code] = [p for _, p in sorted(parts[code])]
    return files


def load_authored_folder(
    folder: str | Path,
    *,
    skip_bad_rows: bool = False,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    name: str | None = None,
    source: str | None = None,
    provenance: str | None = None,
    license: str | None = None,
) -> Dataset:
    """Read ``<code>.jsonl`` files (see ``authored_files``) in the authored layout; ``folder``
    may also be one such file (a translated file read alone gets no domains).

    English (``eng_Latn``): keys ``id, domain, persona, instruction, negative,
    negative_reason`` (``id, persona, instruction`` required). Other languages: ``id,
    persona, instruction, negative``; their ``domain`` and ``extra["negative_reason"]``
    are taken from the English record of the same id, which must exist when English is
    present. Unknown keys are errors (they are usually typos). Every language present is
    read; none is required. ``source`` is stored in every record's ``source``.
    """
    folder = Path(folder)
    codes = _normalise_languages(languages)
    if folder.is_file():
        if folder.stem not in BY_CODE:
            raise DatasetError("not a language file: name it <code>.jsonl with a code such "
                               "as hin_Deva", path=folder)
        files = {folder.stem: [folder]}
    else:
        files = authored_files(folder)
    if not files:
        raise DatasetError("no <code>.jsonl files (e.g. eng_Latn.jsonl)", path=folder)
    builder = _Builder(skip_bad_rows)
    english: dict[str, tuple[str | None, str | None]] = {}  # id -> (domain, negative_reason)
    order = [ENGLISH] + [c for c in ALL_CODES if c != ENGLISH]  # English first: domains
    for code in order:
        if code not in files:
            continue
        is_english = code == ENGLISH
        allowed = _AUTHORED_ENGLISH_KEYS if is_english else _AUTHORED_TRANSLATED_KEYS
        for path in files[code]:
            for number, text in _iter_jsonl(path):
                obj = _parse_json_object(text, "line", path, number)
                record = obj if isinstance(obj, DatasetError) else _authored_record(
                    obj, code, allowed, english, ENGLISH in files, path, number, source)
                if isinstance(record, DatasetError):
                    builder.bad(record)
                    continue
                if is_english:
                    english[record.pair_id] = (record.domain,
                                               record.extra.get("negative_reason"))
                if codes is None or code in codes:
                    builder.add(record, str(path), number)
    meta: dict[str, Any] = {
        "origin": str(folder),
        "path": str(folder),
        "format": "authored-jsonl",
        "files": {code: [str(p) for p in paths] for code, paths in files.items()},
    }
    if provenance:
        meta["provenance"] = provenance
    if license:
        meta["license"] = license
    ds = builder.dataset(name or (folder.stem if folder.is_file() else folder.name), meta)
    return _apply_filters(ds, codes, limit)


def _authored_record(
    obj: dict[str, Any], code: str, allowed: tuple[str, ...],
    english: dict[str, tuple[str | None, str | None]], has_english: bool,
    path: Path, line: int, source: str | None,
) -> Record | DatasetError:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        return DatasetError(f"unknown key(s) {', '.join(map(repr, unknown))}; a {code} record "
                            f"has {', '.join(allowed)}", path=path, line=line,
                            record_id=str(obj.get("id")) if "id" in obj else None)
    pair_id = _id_value(obj.get("id"), "id", path, line)
    if isinstance(pair_id, DatasetError):
        return pair_id
    values: dict[str, str | None] = {}
    for key in allowed[1:]:
        value = _text_field(obj, key, required=key in ("persona", "instruction"), path=path,
                            line=line, record_id=pair_id)
        if isinstance(value, DatasetError):
            return value
        values[key] = value
    persona, instruction = values["persona"], values["instruction"]
    assert persona is not None and instruction is not None
    if code == ENGLISH:
        domain, reason = values.get("domain"), values.get("negative_reason")
    elif has_english:
        if pair_id not in english:
            return DatasetError(f"id {pair_id!r} is not in eng_Latn.jsonl; translated records "
                                "must use the ids of the English file", path=path, line=line,
                                record_id=pair_id)
        domain, reason = english[pair_id]
    else:
        domain, reason = None, None
    extra: dict[str, Any] = {"negative_reason": reason} if reason else {}
    return Record(pair_id, code, persona, instruction, values.get("negative"), domain, source,
                  extra)


# --------------------------------------------------------------------------------------
# format detection and the one entry point


def _sniff_jsonl(path: Path) -> str:
    """"own" / "hub" / "authored" from the first non-blank line of a JSONL file."""
    if HUB_FILE_RE.match(path.name):
        return "hub"
    for _, text in _iter_jsonl(path):
        obj = _parse_json_object(text, "line", path, 1)
        if isinstance(obj, DatasetError):
            return "own"  # the own-format reader reports the bad line precisely
        if "indian_context_persona" in obj:
            return "hub"
        if "pair_id" in obj or "lang" in obj:
            return "own"
        if "id" in obj and path.stem in BY_CODE:
            return "authored"
        return "own"
    return "own"


def detect_format(spec: str | Path) -> str:
    """The format of a file, folder or hub id: "registered", "parquet", "jsonl" (own),
    "hub-folder", "validation-csv", "authored-folder" or "hub-id". DatasetError if none."""
    from personalign.data import registry

    text = str(spec)
    if isinstance(spec, str) and registry.is_registered(text):
        return "registered"
    path = Path(text).expanduser()
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return "parquet"
        if suffix == ".csv":
            return "validation-csv"
        if suffix == ".jsonl":
            kind = _sniff_jsonl(path)
            return {"hub": "hub-folder", "authored": "authored-folder"}.get(kind, "jsonl")
        raise DatasetError("unknown file type: use .parquet or .jsonl (own format), .csv "
                           "(validation sheet) or a folder", path=path)
    if path.is_dir():
        if any(path.rglob("nirdesha_*.jsonl")):
            return "hub-folder"
        if any(is_validation_sheet(p) for p in path.glob("*.csv")):
            return "validation-csv"
        if any(p.stem in BY_CODE or _AUTHORED_PART_RE.match(p.name)
               for p in path.glob("*.jsonl")):
            return "authored-folder"
        raise DatasetError(
            "folder holds no dataset: expected nirdesha_<lang>_<Script>.jsonl files (hub "
            "release), <Language>.csv validation sheets, or <code>.jsonl files", path=path)
    if HUB_ID_RE.match(text):
        return "hub-id"
    names = ", ".join(registry.registered_names())
    raise DatasetError(f"no dataset {text!r}: not a registered name ({names}), not an "
                       "existing file or folder, not a hub id (owner/name)")


def load_dataset(
    spec: str | Path,
    *,
    skip_bad_rows: bool = False,
    languages: list[str] | None = None,
    limit: int | None = None,
    agreement: str = "all",
) -> Dataset:
    """Load a dataset from a registered name, a file, a folder or a hub id.

    Detection order: registered name (``personalign.data.registry``; a local path that
    happens to share a registered name needs a ``./`` prefix), existing file (by suffix,
    and for ``.jsonl`` by the keys of the first line), existing folder (by the files it
    holds), then ``owner/name`` as a Hugging Face dataset id.

    ``languages`` (codes, ISO codes or names) keeps only those languages; ``limit`` keeps
    the ``limit`` smallest pair ids (numeric ids in numeric order), in every language.
    ``agreement`` applies to validation sheets only (see ``load_validation_csvs``).
    Raises DatasetError for anything wrong with the data or its location.
    """
    kind = detect_format(spec)
    if agreement not in ("all", "full", *AGREEMENT_MODES):
        raise DatasetError(f"unknown agreement mode {agreement!r}; use one of "
                           f"{', '.join(AGREEMENT_MODES)}")
    if agreement != "all" and kind not in ("validation-csv", "registered"):
        raise DatasetError(f"the agreement option applies to human-validation sheets only, "
                           f"not to {spec}")
    if kind == "registered":
        from personalign.data import registry

        return registry.load_registered(str(spec), skip_bad_rows=skip_bad_rows,
                                        languages=languages, limit=limit, agreement=agreement)
    path = Path(str(spec)).expanduser()
    if kind in ("parquet", "jsonl"):
        ds = load_own(path, skip_bad_rows=skip_bad_rows)
        return _apply_filters(ds, _normalise_languages(languages), limit)
    if kind == "hub-folder":
        return load_hub_folder(path, skip_bad_rows=skip_bad_rows, languages=languages,
                               limit=limit)
    if kind == "validation-csv":
        return load_validation_csvs(path, skip_bad_rows=skip_bad_rows, languages=languages,
                                    limit=limit, agreement=agreement)
    if kind == "authored-folder":
        return load_authored_folder(path, skip_bad_rows=skip_bad_rows, languages=languages,
                                    limit=limit)
    return load_hub(str(spec), skip_bad_rows=skip_bad_rows, languages=languages, limit=limit)

