"""Prompt templates of the synthesis stage, their identities, and the strict reply parsers.

A template is identified by ``id`` (name/variant/version) and by the sha256 of its full
text (system prompt, user message format, repair message, example format): both go into
the lineage of every record, so a changed wording can never pass for the old one.

Shots, as in the study's "0-shot" / "2-shot instruction data synthesis": a 2-shot request
shows two worked examples as earlier chat turns (user: persona, assistant: the JSON reply)
before the real persona. The two examples of a unit are the first two of the example pool
ranked by sha256("<seed>:<unit key>:<example id>"), so the choice is fixed per unit and
independent of run order or batching.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personalign.build.llm import ChatReply, MalformedReply, Message, parse_json_object

# Length limits of a generated text, in characters; the JSON schema passes the upper one to
# backends that enforce schemas (a grammar bounds a tiny model's output).
MIN_CHARS = 12
MAX_CHARS = 400


@dataclass(frozen=True)
class Example:
    """A worked example for few-shot prompts (hand-written for this project)."""

    id: str
    persona: str
    instruction: str
    negative: str


EXAMPLES: tuple[Example, ...] = (
    Example("ex-weaver", "A handloom weaver in Bhagalpur who sells tussar silk saris at "
            "district fairs and wants to reach buyers in bigger cities.",
            "Write a short product description for my tussar silk saris that I can post on "
            "an online marketplace, mentioning that they are handwoven in Bhagalpur.",
            "Suggest a weekly meal plan for a competitive swimmer training in Sydney."),
    Example("ex-nurse", "A night-shift nurse at a government hospital in Kozhikode who "
            "is studying for a nursing exam to work abroad.",
            "Make me a study timetable for the nursing licensing exam that fits around "
            "three night shifts a week at my hospital.",
            "Recommend toys for a toddler's birthday party with a dinosaur theme."),
    Example("ex-farmer", "A paddy farmer in the Cauvery delta who worries about late "
            "monsoon rains and rising fertiliser prices.",
            "Explain in simple steps how I can apply for crop insurance under the "
            "government scheme before this kharif season's deadline.",
            "Plan a two-week skiing holiday in the Swiss Alps on a generous budget."),
    Example("ex-student", "A first-year engineering student from Jorhat living in a "
            "hostel in Pune, who misses home food and is short of money.",
            "Give me three cheap Assamese recipes I can cook in a hostel kitchen with only "
            "an induction plate.",
            "Draft a pension withdrawal request letter for a retired bank manager."),
    Example("ex-shopkeeper", "A kirana shop owner in Indore who has just started taking "
            "UPI payments and wants to keep better accounts.",
            "How can I keep a simple daily record of cash and UPI sales for my shop so that "
            "filing GST at the end of the quarter is easier?",
            "Write a bedtime lullaby for a newborn in French."),
    Example("ex-grandmother", "A retired school teacher and grandmother in Kolkata who "
            "loves Rabindra Sangeet and is learning to use a smartphone.",
            "Show me, step by step, how to make a video call to my granddaughter in "
            "Bengaluru on WhatsApp.",
            "Create a high-intensity workout plan to qualify for a college football team."),
)

_INSTRUCTION_SYSTEM = (
    "You write data for a benchmark of personas and the instructions they give to an AI "
    "assistant, set in India. Given a persona, write one instruction: a request this "
    "person would type to an AI assistant, in their own voice, that fits their work, place, "
    "family or interests. Use Indian context (places, food, festivals, institutions, "
    "rupees) where it fits. One to three sentences of English. Do not repeat the persona "
    "and do not name the person."
)
_NEGATIVE_SYSTEM = (
    " Also write a hard negative: an instruction on a nearby-sounding topic that this "
    "persona would be very unlikely to give, because it does not fit their role, age, "
    "place or needs."
)
_REPLY_ONE = ' Reply with only a JSON object: {"instruction": "..."}'
_REPLY_TWO = ' Reply with only a JSON object: {"instruction": "...", "negative": "..."}'
_USER = "Persona: {persona}"
_REPAIR = ("Your reply was not accepted: {reason}. Reply again with only the JSON object "
           "{shape} for the same persona.")

_PERSONA_SYSTEM = (
    "You create realistic, varied personas of people living in India for a dataset. A "
    "persona is one or two sentences of English in the third person: who the person is "
    "(occupation or life stage, age group), where they live, and one concrete situation, "
    "interest or worry. Make every persona clearly different from the others; no names."
)
_PERSONA_USER = ("Domain: {domain}\nRegion: {region}\nWrite {n} personas of people from this "
                 'region connected with this domain. Reply with only a JSON object: '
                 '{{"personas": ["...", ...]}} holding exactly {n} strings.')
_PERSONA_REPAIR = ("Your reply was not accepted: {reason}. Reply again with only the JSON "
                   'object {{"personas": [...]}} holding exactly {n} strings.')


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template: ``id`` and ``sha256`` (of ``text``, everything that is sent)."""

    id: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def lineage(self) -> dict[str, str]:
        return {"template_id": self.id, "template_sha256": self.sha256}


def _reply_shape(negatives: bool) -> str:
    return ('{"instruction": "...", "negative": "..."}' if negatives
            else '{"instruction": "..."}')


def instruction_template(shots: int, negatives: bool) -> PromptTemplate:
    """The pair-synthesis template for 0 or 2 shots, with or without a hard negative."""
    if shots not in (0, 2):
        raise ValueError(f"shots must be 0 or 2 (as in the study), got {shots}")
    system = _INSTRUCTION_SYSTEM + (_NEGATIVE_SYSTEM + _REPLY_TWO if negatives else _REPLY_ONE)
    parts = {"system": system, "user": _USER, "repair": _REPAIR, "shots": shots,
             "reply_shape": _reply_shape(negatives)}
    if shots:
        parts["examples"] = [[e.id, e.persona, e.instruction, e.negative] for e in EXAMPLES]
    variant = "instruction+negative" if negatives else "instruction"
    return PromptTemplate(f"{variant}/{shots}-shot/v1",
                          json.dumps(parts, ensure_ascii=False, sort_keys=True))


def persona_template() -> PromptTemplate:
    """The persona-generation template."""
    parts = {"system": _PERSONA_SYSTEM, "user": _PERSONA_USER, "repair": _PERSONA_REPAIR}
    return PromptTemplate("persona/v1", json.dumps(parts, ensure_ascii=False, sort_keys=True))


def pick_examples(seed: int, key: str, k: int = 2) -> list[Example]:
    """The ``k`` examples of a unit: EXAMPLES ranked by sha256("<seed>:<key>:<example id>")."""
    def rank(e: Example) -> str:
        return hashlib.sha256(f"{seed}:{key}:{e.id}".encode()).hexdigest()

    return sorted(EXAMPLES, key=rank)[:k]


def _reply_json(e: Example, negatives: bool) -> str:
    obj = {"instruction": e.instruction}
    if negatives:
        obj["negative"] = e.negative
    return json.dumps(obj, ensure_ascii=False)


def instruction_messages(persona: str, examples: Sequence[Example],
                         negatives: bool) -> list[Message]:
    """The chat messages of one pair-synthesis request."""
    system = _INSTRUCTION_SYSTEM + (_NEGATIVE_SYSTEM + _REPLY_TWO if negatives else _REPLY_ONE)
    messages: list[Message] = [{"role": "system", "content": system}]
    for e in examples:
        messages.append({"role": "user", "content": _USER.format(persona=e.persona)})
        messages.append({"role": "assistant", "content": _reply_json(e, negatives)})
    messages.append({"role": "user", "content": _USER.format(persona=persona)})
    return messages


def instruction_repair(reason: str, negatives: bool) -> str:
    return _REPAIR.format(reason=reason, shape=_reply_shape(negatives))


def max_chars(max_tokens: int | None, fields: int) -> int:
    """Upper length of each of ``fields`` texts in a schema for a reply of at most
    ``max_tokens`` tokens: min(MAX_CHARS, 2 * (max_tokens - 8 * fields) // fields), at least
    2 * MIN_CHARS. Two characters per token is a margin (English runs about four), so a
    grammar-bound reply closes its JSON before the token limit cuts it."""
    if max_tokens is None:
        return MAX_CHARS
    return max(2 * MIN_CHARS, min(MAX_CHARS, 2 * (max_tokens - 8 * fields) // fields))


def instruction_schema(negatives: bool, max_tokens: int | None = None) -> dict[str, Any]:
    """JSON schema of a pair reply (a grammar for local models)."""
    upper = max_chars(max_tokens, 2 if negatives else 1)
    text = {"type": "string", "minLength": MIN_CHARS, "maxLength": upper}
    props = {"instruction": text, **({"negative": text} if negatives else {})}
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise MalformedReply(f'"{key}" must be a string')
    value = " ".join(value.split())
    if len(value) < MIN_CHARS:
        raise MalformedReply(f'"{key}" is empty or shorter than {MIN_CHARS} characters')
    if len(value) > MAX_CHARS:
        raise MalformedReply(f'"{key}" is longer than {MAX_CHARS} characters')
    return value


def parse_pair(reply: ChatReply, persona: str, negatives: bool) -> dict[str, str]:
    """``{"instruction": ..., ["negative": ...]}`` from a reply, whitespace collapsed, or
    MalformedReply: not exactly that JSON object, a value not a string of MIN_CHARS to
    MAX_CHARS characters, the instruction equal to the persona, or the negative equal to
    the instruction (case and spacing ignored)."""
    keys = ("instruction", "negative") if negatives else ("instruction",)
    obj = parse_json_object(reply, keys)
    out = {key: _text(obj, key) for key in keys}
    if _norm(out["instruction"]) == _norm(persona):
        raise MalformedReply("the instruction only repeats the persona")
    if negatives and _norm(out["negative"]) == _norm(out["instruction"]):
        raise MalformedReply("the negative is the same text as the instruction")
    return out


def persona_messages(domain: str, region: str, n: int) -> list[Message]:
    return [{"role": "system", "content": _PERSONA_SYSTEM},
            {"role": "user", "content": _PERSONA_USER.format(domain=domain, region=region, n=n)}]


def persona_repair(reason: str, n: int) -> str:
    return _PERSONA_REPAIR.format(reason=reason, n=n)


def persona_schema(n: int, max_tokens: int | None = None) -> dict[str, Any]:
    text = {"type": "string", "minLength": MIN_CHARS, "maxLength": max_chars(max_tokens, n)}
    return {"type": "object",
            "properties": {"personas": {"type": "array", "items": text, "minItems": n,
                                        "maxItems": n}},
            "required": ["personas"], "additionalProperties": False}


def parse_personas(reply: ChatReply, n: int) -> list[str]:
    """Exactly ``n`` persona strings of MIN_CHARS to MAX_CHARS characters, pairwise
    different (case and spacing ignored), or MalformedReply."""
    obj = parse_json_object(reply, ("personas",))
    items = obj["personas"]
    if not isinstance(items, list):
        raise MalformedReply('"personas" must be a list of strings')
    if len(items) != n:
        raise MalformedReply(f'"personas" has {len(items)} items, {n} were asked for')
    out = [_text({"persona": item}, "persona") for item in items]
    seen: dict[str, int] = {}
    for i, text in enumerate(out):
        j = seen.setdefault(_norm(text), i)
        if j != i:
            raise MalformedReply(f"personas {j + 1} and {i + 1} are the same text")
    return out
