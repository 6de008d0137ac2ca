"""The English frontend: text -> normalized words -> phonemes -> symbol ids."""

from __future__ import annotations

import re
from typing import Optional

from tts.errors import TTSError
from tts.text.g2p import G2P
from tts.text.normalize import Normalizer
from tts.text.symbols import CONSONANTS, PHONEMES, VOWELS, SymbolTable

# Inline pronunciations, written as NVIDIA's Tacotron 2 reads them: ARPAbet in curly braces,
# "Say {T AH0 M EY1 T OW2}." A span is read as phonemes when every part looks like an ARPAbet
# symbol (one or two capitals and an optional stress digit); other braces are text as before.
_BRACES = re.compile(r"\{([^{}]*)\}")
_ARPABET_LIKE = re.compile(r"[A-Z]{1,2}[0-2]?")
PHONEME_CLASS = "phonemes"  # the rule class of an inline pronunciation in explain()


class TextError(TTSError):
    """Text that cannot be spoken; the message is one line meant for the user."""


def _quote(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _phoneme_span(content: str) -> Optional[list[str]]:
    """The phonemes of a braced span, None when it is not meant as one (TextError when it is, but
    names something that is not an ARPAbet phoneme)."""
    parts = content.split()
    if not parts or not all(_ARPABET_LIKE.fullmatch(part) for part in parts):
        return None
    for part in parts:
        if part in PHONEMES:
            continue
        if part in VOWELS:
            raise TextError(f"{{{content}}}: the vowel {part} needs its stress: {part}0 (none), {part}1 "
                            f"(primary) or {part}2 (secondary), as `tts phonemize` writes it")
        raise TextError(f"{{{content}}}: {part!r} is not an ARPAbet phoneme; consonants are "
                        f"{' '.join(CONSONANTS)}, vowels {' '.join(VOWELS)} with a stress digit 0, 1 or 2")
    return parts


def _placeholder(n: int, upper: bool) -> str:
    """A word no rule rewrites, standing in for the n-th inline pronunciation while the text around
    it is normalized (so that the rules still see the whole sentence)."""
    letters = ""
    while True:
        n, digit = divmod(n, 26)
        letters += chr(ord("a") + digit)
        if n == 0:
            break
    word = f"zqxphonemes{letters}"
    return word.upper() if upper else word


class Frontend:
    """Holds the CMU dictionary, homographs and the neural G2P model, each loaded on first use.

    >>> Frontend().describe("Dr. Smith paid $3.50.")
    ('doctor smith paid three dollars fifty cents .', ['D', 'AA1', 'K', 'T', 'ER0', '|', ...])
    """

    NORMALIZERS = ("builtin", "nemo")

    def __init__(self, *, normalizer: str = "builtin") -> None:
        """``normalizer``: "builtin" (tts.text.normalize) or "nemo" (NeMo's grammars, an extra; see
        tts/text/nemo.py)."""
        if normalizer not in self.NORMALIZERS:
            raise TextError(f"frontend normalizer must be one of {', '.join(self.NORMALIZERS)}, got {normalizer!r}")
        self.normalizer_name = normalizer
        self._g2p = G2P()
        self._normalizer = None

    def _annotated(self, text: str, *, warn: bool = True) -> list[tuple[str, str, str]]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise TextError("the text is empty")
        if self._normalizer is None:
            if self.normalizer_name == "nemo":
                from tts.text.nemo import NemoNormalizer

                self._normalizer = NemoNormalizer(lexicon=self._g2p.lexicon)
            else:
                self._normalizer = Normalizer(lexicon=self._g2p.lexicon)
        held, spans = self._hold_pronunciations(text)
        annotated = self._normalizer.annotate(held, warn=warn and not spans)
        if spans:
            if warn:  # warnings quote the text as written (a span's capitals and digits warn of nothing)
                self._normalizer.annotate(text)
            annotated = [(spans[token.lower()], PHONEME_CLASS, spans[token.lower()]) if token.lower() in spans
                         else (token, rule_class, written) for token, rule_class, written in annotated]
        if not any(any(c.isalpha() for c in token) for token, _, _ in annotated):
            raise TextError(f"nothing speakable in the text: {_quote(text.strip())}")
        return annotated

    @staticmethod
    def _hold_pronunciations(text: str) -> tuple[str, dict[str, str]]:
        """``text`` with each inline pronunciation ({HH AH0 L OW1}) replaced by a placeholder word,
        and {placeholder: "{HH AH0 L OW1}"}."""
        spans: dict[str, str] = {}
        upper = not any(c.islower() for c in _BRACES.sub(" ", text))  # all-capital text keeps its casing rules

        def hold(match: re.Match) -> str:
            phones = _phoneme_span(match.group(1))
            if phones is None:
                return match.group(0)
            key = _placeholder(len(spans), upper)
            spans[key.lower()] = "{" + " ".join(phones) + "}"
            return f" {key} "

        return _BRACES.sub(hold, text), spans

    def check(self, text: str) -> None:
        """Raise as reading ``text`` would (TextError: empty, nothing speakable, a missing extra;
        TypeError), without the reading's warnings: for a caller that checks a text before it reads
        it (tts synth, before a model loads), which would otherwise show each warning twice."""
        self._annotated(text, warn=False)

    def _tokens(self, text: str) -> list[str]:
        return [token for token, _, _ in self._annotated(text)]

    def normalize(self, text: str) -> str:
        """Text -> space-separated lowercase words and punctuation tokens (initialisms as capital letters)."""
        return " ".join(self._tokens(text))

    def phonemize(self, text: str) -> list[str]:
        """Text -> ARPAbet phonemes with "|" between words and punctuation tokens, e.g. for "Hi, you."
        ['HH', 'AY1', ',', '|', 'Y', 'UW1', '.']."""
        return self._g2p.phonemize(self._tokens(text))

    def pronounce_words(self, words: str) -> list[str]:
        """Words already normalized (as ``normalize`` returns them) -> phonemes, as ``phonemize``."""
        return self._g2p.phonemize(words.split())

    def describe(self, text: str) -> tuple[str, list[str]]:
        """Text -> (normalized words, phonemes), what `tts phonemize` prints."""
        tokens = self._tokens(text)
        return " ".join(tokens), self._g2p.phonemize(tokens)

    def explain(self, text: str) -> dict:
        """Text -> what `tts phonemize --json` prints: the input, the normalized words, the phonemes,
        and per token its phonemes, the rule class that wrote it and the written text it came from.

        >>> Frontend().explain("On Jan. 5")["tokens"][1]
        {'token': 'january', 'class': 'date', 'written': 'Jan. 5', 'phonemes': ['JH', 'AE1', 'N', ...]}
        """
        annotated = self._annotated(text)
        tokens = [token for token, _, _ in annotated]
        pronounced = self._g2p.pronounce(tokens)
        if len(pronounced) != len(annotated):  # spelled apart by G2P (only without a lexicon): no per-token view
            annotated = [(token, "letters", token) for token, _ in pronounced]
        return {"input": text, "words": " ".join(tokens), "phonemes": " ".join(self._g2p.phonemize(tokens)),
                "tokens": [{"token": token, "class": rule_class, "written": written, "phonemes": phones}
                           for (token, rule_class, written), (_, phones) in zip(annotated, pronounced)]}

    def text_to_ids(self, text: str, symbols: SymbolTable) -> list[int]:
        """Text -> symbol ids of ``symbols`` (a voice's own table), ending with its end-of-sequence id."""
        return symbols.encode(self.phonemize(text))
