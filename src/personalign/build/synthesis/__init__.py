"""Synthesis of English persona–instruction pairs for new datasets.

::

    from personalign.build.llm import OpenAIChat
    from personalign.build.synthesis import SynthesisSettings, read_persona_seeds, synthesize

    seeds = read_persona_seeds("personas.jsonl")
    result = synthesize(seeds, OpenAIChat("gpt-4o-mini"), "work/synth.jsonl",
                        SynthesisSettings(shots=2, negatives=True))
    result.records      # English Records with lineage; result.rejected: unusable replies

Modules: ``seeds`` (persona seed files), ``prompts`` (templates, examples, strict
parsers), ``checkpoint`` (append-only JSONL of finished units), ``core`` (synthesis and
persona generation).
"""

from personalign.build.synthesis.checkpoint import (
    FORMAT as CHECKPOINT_FORMAT,
)
from personalign.build.synthesis.checkpoint import (
    Unit,
    UnitCheckpoint,
    identity_hash,
    read_units,
)
from personalign.build.synthesis.core import (
    PERSONA_STAGE,
    SYNTH_STAGE,
    PersonaRequest,
    Rejection,
    SynthesisResult,
    SynthesisSettings,
    collect_pairs,
    generate_personas,
    persona_ids,
    run_units,
    synthesis_identity,
    synthesize,
    unit_seed,
)
from personalign.build.synthesis.prompts import (
    EXAMPLES,
    Example,
    PromptTemplate,
    instruction_template,
    parse_pair,
    parse_personas,
    persona_template,
)
from personalign.build.synthesis.seeds import PersonaSeed, read_persona_seeds

__all__ = [
    "CHECKPOINT_FORMAT",
    "EXAMPLES",
    "PERSONA_STAGE",
    "SYNTH_STAGE",
    "Example",
    "PersonaRequest",
    "PersonaSeed",
    "PromptTemplate",
    "Rejection",
    "SynthesisResult",
    "SynthesisSettings",
    "Unit",
    "UnitCheckpoint",
    "collect_pairs",
    "generate_personas",
    "identity_hash",
    "instruction_template",
    "parse_pair",
    "parse_personas",
    "persona_ids",
    "persona_template",
    "read_persona_seeds",
    "read_units",
    "run_units",
    "synthesis_identity",
    "synthesize",
    "unit_seed",
]
