"""The English frontend: text -> normalized words -> phonemes -> symbol ids."""

from __future__ import annotations

from tts.errors import TTSError
from tts.text.g2p import G2P
from tts.text.normalize import Normalizer
from tts.text.symbols import SymbolTable


class TextError(TTSError):
    """Text that cannot be spoken; the message is one line meant for the user."""


def _quote(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


class Frontend:
    """Holds the CMU dictionary, homographs and the neural G2P model, each loaded on first use.

    >>> Frontend().describe("Dr. Smith paid $3.50.")
    ('doctor smith paid three dollars fifty cents .', ['D', 'AA1', 'K', 'T', 'ER0', '|', ...])
    """

    def __init__(self) -> None:
        self._g2p = G2P()
        self._normalizer = None

    def _tokens(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise TextError("the text is empty")
        if self._normalizer is None:
            self._normalizer = Normalizer(lexicon=self._g2p.lexicon)
        tokens = self._normalizer.tokens(text)
        if not any(any(c.isalpha() for c in token) for token in tokens):
            raise TextError(f"nothing speakable in the text: {_quote(text.strip())}")
        return tokens

    def normalize(self, text: str) -> str:
        """Text -> space-separated lowercase words and punctuation tokens (initialisms as capital letters)."""
        return " ".join(self._tokens(text))

    def phonemize(self, text: str) -> list[str]:
        """Text -> ARPAbet phonemes with "|" between words and punctuation tokens, e.g. for "Hi, you."
        ['HH', 'AY1', ',', '|', 'Y', 'UW1', '.']."""
        return self._g2p.phonemize(self._tokens(text))

    def describe(self, text: str) -> tuple[str, list[str]]:
        """Text -> (normalized words, phonemes), what `tts phonemize` prints."""
        tokens = self._tokens(text)
        return " ".join(tokens), self._g2p.phonemize(tokens)

    def text_to_ids(self, text: str, symbols: SymbolTable) -> list[int]:
        """Text -> symbol ids of ``symbols`` (a voice's own table), ending with its end-of-sequence id."""
        return symbols.encode(self.phonemize(text))
