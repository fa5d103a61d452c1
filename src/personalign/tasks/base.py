"""Tasks declared as data: which texts are queries, which are the corpus, which prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskName = Literal["t1", "t2", "t3", "t4"]
ALL_TASKS: tuple[TaskName, ...] = ("t1", "t2", "t3", "t4")

TASK_TITLES: dict[str, str] = {
    "t1": "monolingual retrieval (persona -> instruction)",
    "t2": "cross-lingual retrieval (persona in a -> instruction in b)",
    "t3": "reverse retrieval (instruction -> persona), mono and cross-lingual",
    "t4": "compatibility classification (frozen embeddings + logistic regression)",
}


@dataclass(frozen=True)
class RetrievalTask:
    """One retrieval evaluation: queries in ``query_lang``, corpus in ``corpus_lang``."""

    task: TaskName
    query_lang: str
    corpus_lang: str

    @property
    def direction(self) -> Literal["p2i", "i2p"]:
        return "i2p" if self.task == "t3" else "p2i"

    @property
    def query_field(self) -> Literal["persona", "instruction"]:
        return "instruction" if self.task == "t3" else "persona"

    @property
    def corpus_field(self) -> Literal["persona", "instruction"]:
        return "persona" if self.task == "t3" else "instruction"


def parse_tasks(spec: str | None) -> list[TaskName]:
    """``"t1,t3"`` -> ["t1", "t3"]; None/"all" -> all four. Raises ValueError on unknowns."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return list(ALL_TASKS)
    out: list[TaskName] = []
    for part in spec.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in ALL_TASKS:
            raise ValueError(f"unknown task {part!r}; choose from {', '.join(ALL_TASKS)}")
        if name not in out:
            out.append(name)  # type: ignore[arg-type]
    return out


def retrieval_tasks(languages: list[str], tasks: list[TaskName]) -> list[RetrievalTask]:
    """T1: (a, a) for every a. T2: every ordered (a, b), a != b. T3: every ordered (a, b)
    including a == b, with instructions as queries."""
    out: list[RetrievalTask] = []
    if "t1" in tasks:
        out += [RetrievalTask("t1", a, a) for a in languages]
    if "t2" in tasks:
        out += [RetrievalTask("t2", a, b) for a in languages for b in languages if a != b]
    if "t3" in tasks:
        out += [RetrievalTask("t3", a, b) for a in languages for b in languages]
    return out
