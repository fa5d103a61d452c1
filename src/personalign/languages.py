"""The language table: codes, names, scripts, families. The single source of truth.

Codes are ISO 639-3 plus a FLORES-style ISO 15924 script tag (``hin_Deva``). Every other
module looks languages up here; nothing else spells out a language list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # "hin_Deva"
    iso639_3: str  # "hin"
    name: str  # "Hindi"
    script: str  # ISO 15924 tag: "Deva"
    script_name: str  # "Devanagari"
    script_group: str  # "North Brahmic" | "South Brahmic" | "Perso-Arabic" | "Latin"
    family: str  # "Indo-Aryan" | "Dravidian" | "Germanic"
    # Inclusive Unicode code-point ranges of the script's letters (used by the script check).
    script_ranges: tuple[tuple[int, int], ...]
    # Aliases seen in the wild (file names, hub configs, CSV names), lower-case.
    aliases: tuple[str, ...] = ()

    @property
    def indic(self) -> bool:
        return self.code != ENGLISH


_BENG = ((0x0980, 0x09FF),)
_DEVA = ((0x0900, 0x097F), (0xA8E0, 0xA8FF))
_ARAB = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))

LANGUAGES: tuple[Language, ...] = (
    Language("asm_Beng", "asm", "Assamese", "Beng", "Bengali-Assamese", "North Brahmic",
             "Indo-Aryan", _BENG, ("as", "assamese")),
    Language("ben_Beng", "ben", "Bengali", "Beng", "Bengali-Assamese", "North Brahmic",
             "Indo-Aryan", _BENG, ("bn", "bengali", "bangla")),
    Language("guj_Gujr", "guj", "Gujarati", "Gujr", "Gujarati", "North Brahmic",
             "Indo-Aryan", ((0x0A80, 0x0AFF),), ("gu", "gujarati")),
    Language("hin_Deva", "hin", "Hindi", "Deva", "Devanagari", "North Brahmic",
             "Indo-Aryan", _DEVA, ("hi", "hindi")),
    Language("kan_Knda", "kan", "Kannada", "Knda", "Kannada", "South Brahmic",
             "Dravidian", ((0x0C80, 0x0CFF),), ("kn", "kannada")),
    Language("mal_Mlym", "mal", "Malayalam", "Mlym", "Malayalam", "South Brahmic",
             "Dravidian", ((0x0D00, 0x0D7F),), ("ml", "malayalam")),
    Language("mar_Deva", "mar", "Marathi", "Deva", "Devanagari", "North Brahmic",
             "Indo-Aryan", _DEVA, ("mr", "marathi")),
    Language("ory_Orya", "ory", "Odia", "Orya", "Odia", "North Brahmic",
             "Indo-Aryan", ((0x0B00, 0x0B7F),), ("or", "odia", "oriya", "ori")),
    Language("pan_Guru", "pan", "Punjabi", "Guru", "Gurmukhi", "North Brahmic",
             "Indo-Aryan", ((0x0A00, 0x0A7F),), ("pa", "punjabi", "panjabi")),
    Language("tam_Taml", "tam", "Tamil", "Taml", "Tamil", "South Brahmic",
             "Dravidian", ((0x0B80, 0x0BFF),), ("ta", "tamil")),
    Language("tel_Telu", "tel", "Telugu", "Telu", "Telugu", "South Brahmic",
             "Dravidian", ((0x0C00, 0x0C7F),), ("te", "telugu")),
    Language("urd_Arab", "urd", "Urdu", "Arab", "Perso-Arabic", "Perso-Arabic",
             "Indo-Aryan", _ARAB, ("ur", "urdu")),
    Language("eng_Latn", "eng", "English", "Latn", "Latin", "Latin",
             "Germanic", ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F)),
             ("en", "english")),
)

ENGLISH = "eng_Latn"
BY_CODE: dict[str, Language] = {lang.code: lang for lang in LANGUAGES}
INDIC_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES if lang.code != ENGLISH)
ALL_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES)

_LOOKUP: dict[str, str] = {}
for _lang in LANGUAGES:
    for _key in (_lang.code, _lang.iso639_3, _lang.name, *_lang.aliases):
        _LOOKUP[_key.lower()] = _lang.code


def resolve(name: str) -> Language:
    """Return the language for a code, ISO 639-1/3 code, name or alias (case-insensitive).

    Raises ValueError naming the accepted codes when ``name`` is unknown.
    """
    code = _LOOKUP.get(name.strip().lower())
    if code is None:
        raise ValueError(
            f"unknown language {name!r}; use one of: {', '.join(ALL_CODES)} "
            "(or an ISO 639 code / English name such as 'hi' or 'Hindi')"
        )
    return BY_CODE[code]


def parse_language_list(spec: str | None) -> list[str] | None:
    """Parse a comma-separated list (``"hin,tam_Taml,English"``) into codes; None means all."""
    if spec is None or not spec.strip() or spec.strip().lower() == "all":
        return None
    return [resolve(part).code for part in spec.split(",") if part.strip()]


def _char_class(ch: str, ranges: tuple[tuple[int, int], ...]) -> str:
    """"i": a letter of the script; "o": a letter outside it; "": not a letter. Combining
    marks inside the script count as its letters; its digits and dandas do not."""
    cp = ord(ch)
    in_script = any(lo <= cp <= hi for lo, hi in ranges)
    if in_script:
        if ch.isspace() or ch.isdigit() or ch in "\u0964\u0965\u06d4\u060c\u061f":
            return ""
        return "i"
    return "o" if ch.isalpha() else ""


class _ClassTable(dict[int, str]):
    """``str.translate`` table of one language, filled lazily one character at a time."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.ranges = BY_CODE[code].script_ranges

    def __missing__(self, cp: int) -> str:
        value = self[cp] = _char_class(chr(cp), self.ranges)
        return value


_CLASS_TABLES: dict[str, _ClassTable] = {}


def script_share(text: str, code: str) -> float:
    """Share of the letters in ``text`` that belong to the script of language ``code``.

    share = #letters inside the script's ranges / #letters, where letters are characters
    with ``str.isalpha`` plus the script's combining marks (its digits and dandas are not
    letters). Returns 1.0 for text with no letters. Each character is classified once per
    language, then texts are counted with ``str.translate``.
    """
    table = _CLASS_TABLES.get(code)
    if table is None:
        table = _CLASS_TABLES[code] = _ClassTable(code)
    classes = text.translate(table)
    return 1.0 if not classes else classes.count("i") / len(classes)


def same_script(a: str, b: str) -> bool:
    return BY_CODE[a].script == BY_CODE[b].script


def same_script_group(a: str, b: str) -> bool:
    return BY_CODE[a].script_group == BY_CODE[b].script_group


def same_family(a: str, b: str) -> bool:
    return BY_CODE[a].family == BY_CODE[b].family
