"""NVIDIA NeMo's text normalization (WFST grammars, nemo-text-processing) as a normalizer backend.

An optional extra (``pip install "tts[nemo]"``; Apache-2.0, with pynini), chosen with
``Frontend(normalizer="nemo")`` or ``--normalizer nemo``. NeMo rewrites the written forms (numbers,
dates, money, URLs ...) into words, one sentence at a time; the built-in normalizer then only
tokenizes its output (casing, initialisms, punctuation tokens, transliteration; none of its rules
run), so both backends give tokens of the same form. A sentence NeMo gives back with digits still in
it (its grammars failed on it, and it returns the input) is read by the built-in rules instead.
Capitals NeMo wrote are spelled, and a full stop NeMo's abbreviation grammar swallowed is put back.

NeMo compiles its English grammars on first use (35-55 s on two busy cores) into .far files
cached under the user's cache directory, ``$XDG_CACHE_HOME/tts/nemo/VERSION`` (``~/.cache/...``);
later loads take about 0.3 s. The version directory keeps grammars compiled by one release of
nemo-text-processing from being loaded by another. Figures: docs/frontend.md.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Container, Optional

from tts.errors import TTSError
from tts.text.normalize import Normalizer
from tts.text.sentences import split_text
from tts.text.tables import CLOSING_QUOTES, PUNCTUATION_STRENGTH, SENTENCE_PUNCTUATION

logger = logging.getLogger(__name__)

NEMO_LOGGER = "NeMo-text-processing"
_WRITTEN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_CAPITALS = re.compile(r"\b[A-Z]+\b")
# NeMo's search grows steeply with the length of its input (it warns past 500 words), so it is given
# sentences, over-long ones cut at clause boundaries, then between words. The limit is synthesis's
# chunk limit (tts.synth.MAX_CHARS), so the chunks synthesis reads are the pieces already read (and
# remembered) when `tts synth` checked the whole text first.
PIECE_CHARS = 250
REMEMBERED_PIECES = 4096


class NemoUnavailableError(TTSError):
    """The nemo normalizer was asked for but nemo-text-processing is not installed."""


UNAVAILABLE = ("the nemo normalizer needs nemo-text-processing: pip install \"tts[nemo]\" "
               "(or use the builtin normalizer)")


def require() -> None:
    """NemoUnavailableError unless nemo-text-processing can be imported (found, not loaded: a
    check that costs nothing, for entry points that would otherwise find out later)."""
    import importlib.util

    if importlib.util.find_spec("nemo_text_processing") is None:
        raise NemoUnavailableError(UNAVAILABLE)


def cache_dir(version: str) -> Path:
    """Where NeMo's compiled grammars of nemo-text-processing ``version`` are kept."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tts" / "nemo" / version


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nemo-text-processing")
    except PackageNotFoundError:  # imported from a source tree without package metadata
        return "unversioned"


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _quiet_nemo_logger() -> None:
    """NeMo logs every punctuation decision at INFO, through a handler of its own added at import
    (so each line printed twice), and resets its level to INFO on every call. Its records go through
    the application's handlers like any library's, warnings and above only."""
    nemo_log = logging.getLogger(NEMO_LOGGER)
    for handler in list(nemo_log.handlers):
        nemo_log.removeHandler(handler)
    if not any(isinstance(f, _BelowWarning) for f in nemo_log.filters):
        nemo_log.addFilter(_BelowWarning())


class NemoNormalizer:
    """The interface of ``Normalizer`` (``tokens``, ``annotate``, callable), through NeMo first.
    Tokens NeMo wrote carry the class "nemo" (NeMo does not say which of its grammars fired)."""

    def __init__(self, *, lexicon: Optional[Container[str]] = None):
        try:
            from nemo_text_processing.text_normalization.normalize import Normalizer as Nemo
        except ImportError:
            raise NemoUnavailableError(UNAVAILABLE) from None
        _quiet_nemo_logger()
        directory = cache_dir(_installed_version())
        directory.mkdir(parents=True, exist_ok=True)
        if not any(directory.glob("*.far")):
            logger.info("compiling NeMo's English grammars into %s (once; about half a minute)", directory)
        self._nemo = Nemo(input_case="cased", lang="en", cache_dir=str(directory), overwrite_cache=False)
        self._builtin = Normalizer(lexicon=lexicon)
        # NeMo takes about 0.1 s a sentence; a piece read once is not read again.
        self._read = functools.lru_cache(maxsize=REMEMBERED_PIECES)(self._piece)

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def tokens(self, text: str) -> list[str]:
        return [token for token, _, _ in self.annotate(text)]

    def annotate(self, text: str, *, warn: bool = True) -> list[tuple[str, str, str]]:
        """Text -> (token, class, source) per token, as ``Normalizer.annotate`` (``warn`` too)."""
        if not isinstance(text, str):
            raise TypeError(f"normalize() takes a str, got {type(text).__name__}")
        out: list[tuple[str, str, str]] = []
        for piece in split_text(text, PIECE_CHARS):
            out.extend(self._read(piece, warn))
        return out

    def _piece(self, piece: str, warn: bool) -> tuple[tuple[str, str, str], ...]:
        spoken = self._nemo.normalize(piece, punct_post_process=True)
        if any(c.isdigit() for c in spoken):
            logger.debug("NeMo left digits in %r (%r); the builtin rules read it", piece, spoken)
            return tuple(self._builtin.annotate(piece, warn=warn))
        written = set(_WRITTEN_WORD.findall(piece))
        # NeMo writes the letters it means to be spelled in capitals ("7 am" -> "seven AM", "http" ->
        # "HTTP", "a_b" -> "A underscore B"); lowercased, "AM" would be read as the verb and "A" as
        # the article. Capitals that were in the input ("NASA") are read as the built-in reads them.
        spell = {word for word in _CAPITALS.findall(spoken) if word not in written}
        read = self._builtin.annotate(spoken, rules=False, spell=spell, warn=warn)
        tokens = [(token, "nemo" if rule_class in ("word", "letters") and source not in written else rule_class,
                   source)
                  for token, rule_class, source in read]
        # An abbreviation's dot that also ends the sentence ("Baker St.", "5 p.m.") is consumed by
        # NeMo's grammar; the full stop is the model's cue for a falling end, so it is put back.
        end = piece.rstrip(CLOSING_QUOTES)[-1:]
        if end and end in SENTENCE_PUNCTUATION and tokens and tokens[-1][0] not in PUNCTUATION_STRENGTH:
            tokens.append((end, "punctuation", end))
        return tuple(tokens)
