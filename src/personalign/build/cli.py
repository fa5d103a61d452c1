"""``personalign build``: the dataset construction pipeline's commands.

Each stage lives in its own module and exposes a typer app or command; this module only
mounts them so that ``personalign build <stage> ...`` works.
"""

from __future__ import annotations

import importlib

import typer

build_app = typer.Typer(help="Build datasets: synthesize, translate, check, validate.",
                        no_args_is_help=True)

_STAGES = (
    ("synthesize", "personalign.build.cli_pipeline", "synthesize_app",
     "Synthesize English persona–instruction pairs with an LLM (resumable)."),
    ("translate", "personalign.build.cli_pipeline", "translate_app",
     "Translate a dataset: llm | nllb | m2m100 | ct2 | indictrans2 (resumable)."),
    ("validate", "personalign.build.cli_validate", "validate_app",
     "Human validation: export rating sheets, compute agreement."),
    ("check", "personalign.build.cli_check", "check_app", "Quality gate: per-language report."),
    ("run", "personalign.build.cli_pipeline", "run_app",
     "The whole pipeline from a TOML config, resumable in a work folder."),
)

for _name, _module, _attr, _help in _STAGES:
    try:
        build_app.add_typer(getattr(importlib.import_module(_module), _attr), name=_name,
                            help=_help)
    except ModuleNotFoundError as exc:
        # A stage whose optional extra (pip install 'personalign[build]') is missing; our own
        # modules missing is a bug and must surface.
        if (exc.name or "").startswith("personalign"):
            raise
