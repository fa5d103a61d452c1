"""Tiny randomly initialised translation models, built on the fly for the translation tests.

No NLLB / M2M-100 / IndicTrans2 weights can be had offline, so each backend's real
loading and generation code runs on models of the same architecture with random weights:

- NLLB-style: an ``NllbTokenizer`` over a BPE vocabulary trained here (tokenizers library)
  on a few hundred English + Indic sentences, with the 13 FLORES codes of
  ``personalign.languages`` as language tokens, and an ``M2M100ForConditionalGeneration``
  with d_model 32, one encoder and one decoder layer.
- M2M-100: an ``M2M100Tokenizer`` over a SentencePiece BPE model trained here plus the 100
  ``__xx__`` language tokens of the real M2M-100, same tiny architecture.
- IndicTrans2 stand-in: IndicTrans2's own architecture needs its remote code, which cannot
  be had offline. The stand-in is the tiny M2M-100 architecture with a tokenizer shaped
  like IndicTrans2's: the language tags are tokens, the input is ``"<src> <tgt> text"``
  followed by ``</s>``, no forced target token, and the vocabulary covers Latin and
  Devanagari only (IndicTrans2 writes all Indic output in Devanagari and IndicProcessor
  transliterates it to the target script).

Weights use init_std 0.5 (not 0.02) so that a random model's greedy output depends on its
input, which the order-restoration tests need. Everything is built once per test process
into a temporary folder.
"""

from __future__ import annotations

import atexit
import functools
import json
import random
import shutil
import tempfile
from pathlib import Path

from personalign.languages import ALL_CODES

ENGLISH_WORDS = (
    "the teacher farmer doctor student engineer artist nurse driver cook tailor "
    "in Pune Chennai Kolkata Lucknow Mysuru village city market school hospital "
    "plans writes cooks reads teaches builds sells buys asks helps a lesson recipe "
    "letter report song budget garden festival bridge with for every morning today"
)
WORDS = {
    "hin_Deva": "मैं एक शिक्षक हूँ और पुणे में रहता किसान बाज़ार गाँव विद्यालय पत्र गीत",
    "mar_Deva": "मी एक शिक्षक आहे आणि पुण्यात राहतो शेतकरी बाजार गाव शाळा पत्र",
    "tam_Taml": "நான் ஒரு ஆசிரியர் சென்னையில் வாழ்கிறேன் விவசாயி சந்தை கிராமம் பள்ளி",
    "ben_Beng": "আমি একজন শিক্ষক কলকাতায় থাকি কৃষক বাজার গ্রাম বিদ্যালয় চিঠি",
    "urd_Arab": "میں ایک استاد ہوں لکھنؤ میں رہتا کسان بازار گاؤں اسکول خط",
    "tel_Telu": "నేను ఒక ఉపాధ్యాయుడిని హైదరాబాద్ లో ఉంటాను రైతు సంత గ్రామం",
    "kan_Knda": "ನಾನು ಒಬ್ಬ ಶಿಕ್ಷಕ ಮೈಸೂರಿನಲ್ಲಿ ವಾಸಿಸುತ್ತೇನೆ ರೈತ ಮಾರುಕಟ್ಟೆ ಹಳ್ಳಿ",
    "mal_Mlym": "ഞാൻ ഒരു അധ്യാപകനാണ് കൊച്ചിയിൽ താമസിക്കുന്നു കർഷകൻ ചന്ത ഗ്രാമം",
    "guj_Gujr": "હું એક શિક્ષક છું અમદાવાદમાં રહું ખેડૂત બજાર ગામ શાળા",
    "pan_Guru": "ਮੈਂ ਇੱਕ ਅਧਿਆਪਕ ਹਾਂ ਅੰਮ੍ਰਿਤਸਰ ਵਿੱਚ ਰਹਿੰਦਾ ਕਿਸਾਨ ਬਾਜ਼ਾਰ ਪਿੰਡ",
    "ory_Orya": "ମୁଁ ଜଣେ ଶିକ୍ଷକ କଟକରେ ରହେ ଚାଷୀ ବଜାର ଗାଁ ବିଦ୍ୟାଳୟ",
    "asm_Beng": "মই এজন শিক্ষক গুৱাহাটীত থাকোঁ খেতিয়ক বজাৰ গাঁও বিদ্যালয়",
}
TINY_DIMS = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 256,
    "init_std": 0.5,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "decoder_layerdrop": 0.0,
}
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def corpus(languages: tuple[str, ...] = tuple(WORDS), n_per_language: int = 30) -> list[str]:
    """Seeded random sentences: n per language in ``languages`` plus 3n English ones."""
    rng = random.Random(7)
    english = ENGLISH_WORDS.split()
    out = [" ".join(rng.choices(english, k=rng.randint(4, 10))) + "."
           for _ in range(3 * n_per_language)]
    for lang in languages:
        words = WORDS[lang].split()
        out += [" ".join(rng.choices(words, k=rng.randint(3, 8))) + "।"
                for _ in range(n_per_language)]
    return out


def _bpe(sentences: list[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A BPE vocabulary and merges, trained with a SentencePiece-style Metaspace split."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train_from_iterator(sentences, trainers.BpeTrainer(vocab_size=vocab_size,
                                                           special_tokens=SPECIALS))
    model = json.loads(tok.to_str())["model"]
    return dict(model["vocab"]), [tuple(m) for m in model["merges"]]


def _save_model(folder: Path, vocab_size: int, seed: int, **config: object) -> None:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    cfg = M2M100Config(vocab_size=vocab_size, **TINY_DIMS, **config)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    M2M100ForConditionalGeneration(cfg).save_pretrained(folder)


def build_nllb(folder: Path) -> Path:
    """NLLB-style tokenizer + tiny model in ``folder``."""
    from transformers import NllbTokenizer

    vocab, merges = _bpe(corpus(), 400)
    tok = NllbTokenizer(vocab=vocab, merges=merges,  # type: ignore[arg-type]
                        extra_special_tokens=list(ALL_CODES), src_lang="eng_Latn")
    tok.save_pretrained(folder)
    _save_model(folder, len(tok), seed=1, tokenizer_class="NllbTokenizer")
    return folder


def build_m2m100(folder: Path) -> Path:
    """M2M-100 tokenizer (SentencePiece + vocab.json + 100 language tokens) + tiny model."""
    import sentencepiece as spm
    from transformers import M2M100Tokenizer
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "sentencepiece.bpe"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_prefix=str(prefix), vocab_size=300,
        model_type="bpe", bos_id=0, pad_id=1, eos_id=2, unk_id=3, character_coverage=1.0,
        hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    sp = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    # The real tokenizer_config lists the language tokens as additional special tokens;
    # without them they would not be skipped when decoding.
    lang_tokens = [f"__{c}__" for c in FAIRSEQ_LANGUAGE_CODES["m2m100"]]
    tok = M2M100Tokenizer(vocab_file=str(folder / "vocab.json"), spm_file=str(prefix) + ".model",
                          src_lang="en", additional_special_tokens=lang_tokens)
    tok.save_pretrained(folder)
    (folder / "sentencepiece.bpe.vocab").unlink()
    n_ids = max(tok.lang_code_to_id.values()) + 1 + tok.num_madeup_words
    _save_model(folder, n_ids, seed=2)
    return folder


def build_indictrans_standin(folder: Path) -> Path:
    """IndicTrans2-shaped tokenizer (tags as tokens, "<src> <tgt> text </s>", Latin and
    Devanagari vocabulary) + tiny M2M-100-architecture model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab, merges = _bpe(corpus(("hin_Deva", "mar_Deva")), 300)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", extra_special_tokens=list(ALL_CODES),
    )
    fast.save_pretrained(folder)
    _save_model(folder, len(fast), seed=3)
    return folder


BUILDERS = {"nllb": build_nllb, "m2m100": build_m2m100, "indictrans2": build_indictrans_standin}


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="personalign-tiny-mt-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def tiny_model(kind: str) -> Path:
    """The folder of one tiny model ("nllb", "m2m100" or "indictrans2"), built once per
    test process."""
    return BUILDERS[kind](_root() / kind)


def tiny_models() -> dict[str, Path]:
    """All tiny models: {"nllb", "m2m100", "indictrans2"} -> folder."""
    return {kind: tiny_model(kind) for kind in BUILDERS}
