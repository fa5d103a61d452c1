"""The one exception type for bad or unreachable data.

A ``DatasetError`` says where the problem is (file, line, record id) and what to do about
it. The CLI prints ``str(error)`` and exits with ``DatasetError.exit_code`` (2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DatasetError(Exception):
    """A dataset could not be read, is malformed, or could not be fetched.

    Attributes:
        message: what is wrong and what to do (one or two sentences, no location).
        path: the file or folder concerned (None for e.g. an unknown dataset name).
        line: 1-based line of a JSONL file, or for a CSV file the line on which the row
            starts (the header is line 1, so the first data row is line 2).
        record_id: the pair id of the offending record, when known.

    ``str(error)`` is ``"<path>, line <line> (record <id>): <message>"``, leaving out the
    parts that are unknown.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        record_id: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.record_id = record_id
        super().__init__(self.__str__())

    def location(self) -> str:
        """``"<path>, line <n> (record <id>)"`` with unknown parts left out; may be ""."""
        parts: list[str] = []
        if self.path is not None:
            parts.append(self.path)
        if self.line is not None:
            parts.append(f"line {self.line}")
        where = ", ".join(parts)
        if self.record_id is not None:
            where = f"{where} (record {self.record_id})" if where else f"record {self.record_id}"
        return where

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as stored in ``Dataset.meta["skipped"]``."""
        return {
            "file": self.path,
            "line": self.line,
            "record_id": self.record_id,
            "reason": self.message,
        }
