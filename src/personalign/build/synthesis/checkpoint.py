"""An append-only JSONL checkpoint of finished units of work (persona generation,
pair synthesis).

Format (UTF-8 JSONL):

- line 1, the header: ``{"format": "personalign.build.checkpoint/1", "stage": ...,
  "identity_hash": ..., "identity": {...}}``; the identity names everything that decides
  the output (backend, model, prompt template, settings). Opening a checkpoint with
  another identity hash is refused: two models or prompts never mix in one file;
- then one line per finished unit: ``{"key": ..., "status": "ok" | "rejected",
  "input_sha256": ..., "output": {...} | null, "reason": str | null}``.

A unit is written once it is finished, in one ``write`` followed by flush and fsync, so a
process killed at any moment leaves whole lines plus at most one torn last line; the torn
line is cut off on the next open (its unit is done again). A unit appears at most once
as "ok"; a "rejected" unit may be retried later (another line for the same key): an "ok"
line wins, else the last "rejected" one. A restart whose input for a finished key
differs (``input_sha256``) is refused for that key: the old output no longer belongs to
the input.

One process writes a checkpoint at a time (``<path>.lock`` enforces it). Parallel workers
(Ray actors) each write their own file (a shard); ``read_units`` merges several files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from personalign.data.errors import DatasetError

log = logging.getLogger(__name__)

FORMAT = "personalign.build.checkpoint/1"

Status = Literal["ok", "rejected"]


def identity_hash(identity: dict[str, Any]) -> str:
    """First 16 hex digits of sha256 over the canonical JSON of ``identity`` without its
    ``versions`` key (a library upgrade between a crash and its restart must not orphan a
    checkpoint)."""
    core = {k: v for k, v in identity.items() if k != "versions"}
    text = json.dumps(core, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def sha256_json(value: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``value``."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Unit:
    """One finished unit as stored: ``output`` when ok, ``reason`` when rejected."""

    key: str
    status: Status
    input_sha256: str
    output: dict[str, Any] | None = None
    reason: str | None = None
    # Where it was read from (file, line); not stored.
    file: str | None = None
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "input_sha256": self.input_sha256,
                "output": self.output, "reason": self.reason}


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_lines(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append JSON lines in one write, then flush and fsync (a new file's directory entry
    too)."""
    new = not path.exists()
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if new:
        _fsync_dir(path.parent)


def parse_line(line: str, path: Path, number: int) -> dict[str, Any]:
    """One checkpoint line as a JSON object; DatasetError naming the file and line if not."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"invalid JSON ({err.msg}); the checkpoint is damaged: remove this line (its unit "
            "will be done again) or start a new checkpoint", path=path, line=number,
        ) from None
    if not isinstance(obj, dict):
        raise DatasetError("checkpoint line is not a JSON object", path=path, line=number)
    return obj


def read_file(path: Path, *, repair: bool) -> tuple[dict[str, Any] | None, list[Unit]]:
    """(header or None for a missing/empty file, units in file order).

    A last line without its newline is a write cut short: with ``repair`` it is cut from
    the file (warning), else ignored. Raises DatasetError for a bad line elsewhere or a
    missing header.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None, []
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        if repair:
            log.warning("%s: dropping an unfinished last line (%d bytes) left by an "
                        "interrupted run; its unit will be done again", path, len(data) - keep)
            with path.open("r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
        data = data[:keep]
        if keep == 0:
            return None, []
    lines = data.decode("utf-8").split("\n")[:-1]
    header = parse_line(lines[0], path, 1)
    if header.get("format") != FORMAT or "identity_hash" not in header:
        raise DatasetError(f"not a build checkpoint (expected a header with format {FORMAT})",
                           path=path, line=1)
    units: list[Unit] = []
    for number, line in enumerate(lines[1:], start=2):
        row = parse_line(line, path, number)
        try:
            status = row["status"]
            if status not in ("ok", "rejected"):
                raise ValueError(f"unknown status {status!r}")
            units.append(Unit(str(row["key"]), status, str(row["input_sha256"]),
                              row.get("output"), row.get("reason"), str(path), number))
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"malformed checkpoint entry ({err})", path=path,
                               line=number) from None
    return header, units


def check_header(header: dict[str, Any], path: Path, stage: str, id_hash: str) -> None:
    if header.get("stage") != stage:
        raise DatasetError(f"this checkpoint belongs to stage {header.get('stage')!r}, not "
                           f"{stage!r}; use another path", path=path, line=1)
    if header["identity_hash"] != id_hash:
        model = header.get("identity", {}).get("model")
        raise DatasetError(
            f"this checkpoint was written with other settings (identity "
            f"{header['identity_hash']}, model {model}) than the ones given now ({id_hash}); "
            "pass the same backend, model, prompt and settings, or use a new work folder",
            path=path, line=1,
        )


def merge_units(units: Iterable[Unit]) -> dict[str, Unit]:
    """The state of every key: its "ok" unit, else its last "rejected" unit (files are
    merged in any order, so an "ok" wins over a "rejected" wherever it stands). Raises
    DatasetError when a key is "ok" twice: two runs wrote it at once."""
    state: dict[str, Unit] = {}
    for unit in units:
        before = state.get(unit.key)
        if before is not None and before.status == "ok":
            if unit.status == "ok":
                raise DatasetError(
                    f"unit {unit.key!r} is already finished (line {before.line} of "
                    f"{before.file}); the files were written by two runs at once",
                    path=unit.file, line=unit.line, record_id=unit.key,
                )
            continue
        state[unit.key] = unit
    return state


def read_units(paths: Iterable[Path], stage: str, id_hash: str | None = None
               ) -> dict[str, Unit]:
    """Merged state of several checkpoint files of one stage, read-only (torn last lines
    are ignored, not cut; missing files are skipped).

    Inside a file, ``merge_units`` applies (a key "ok" twice is an error). Across files a
    key may be "ok" in two of them: a Ray task retried after its actor died redoes units
    the dead actor had already written to its own shard. The first file in ``paths`` order
    wins (with a warning), so the merged result never holds a unit twice.
    """
    state: dict[str, Unit] = {}
    for path in paths:
        header, found = read_file(Path(path), repair=False)
        if header is None:
            continue
        if id_hash is not None:
            check_header(header, Path(path), stage, id_hash)
        for key, unit in merge_units(found).items():
            before = state.get(key)
            if before is not None and before.status == "ok":
                if unit.status == "ok":
                    log.warning("unit %s is finished in both %s and %s (a retried task); "
                                "keeping the first", key, before.file, unit.file)
                continue
            if before is not None and unit.status == "rejected":
                continue  # rejected everywhere so far: keep the first reason
            state[key] = unit
    return state


def combine(*states: dict[str, Unit]) -> dict[str, Unit]:
    """Merge unit states: an "ok" unit wins, else the first state's "rejected" unit."""
    out: dict[str, Unit] = {}
    for state in states:
        for key, unit in state.items():
            before = out.get(key)
            if before is None or (before.status != "ok" and unit.status == "ok"):
                out[key] = unit
    return out


class UnitCheckpoint:
    """A checkpoint file opened for appending (a context manager that holds its lock).

    On open: takes ``<path>.lock``, cuts a torn last line, checks the header (writes it
    for a new file) and loads the finished units into ``done``.
    """

    def __init__(self, path: str | Path, stage: str, identity: dict[str, Any]) -> None:
        self.path = Path(path)
        self.stage = stage
        self.identity = identity
        self.id_hash = identity_hash(identity)
        self._lock = FileLock(str(self.path) + ".lock")
        self.done: dict[str, Unit] = {}

    def __enter__(self) -> UnitCheckpoint:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            header, units = read_file(self.path, repair=True)
            if header is None:
                append_lines(self.path, [{"format": FORMAT, "stage": self.stage,
                                          "identity_hash": self.id_hash,
                                          "identity": self.identity}])
            else:
                check_header(header, self.path, self.stage, self.id_hash)
            self.done = merge_units(units)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def append(self, units: Sequence[Unit]) -> None:
        """Write finished units (one write + fsync) and add them to ``done``."""
        if not units:
            return
        for unit in units:
            before = self.done.get(unit.key)
            if before is not None and before.status == "ok":
                raise ValueError(f"unit {unit.key!r} is already finished in {self.path}")
        append_lines(self.path, [u.to_json() for u in units])
        for unit in units:
            self.done[unit.key] = unit
