"""Sentence splitting: text of any length -> chunks short enough for the acoustic model.

Text is cut into sentences (not after an abbreviation the normalizer reads, such as "Dr." or
"Gov.", nor after initials such as "J. R.", nor before a lowercase word as in "5 p.m. on Monday"),
and a sentence longer than ``max_chars`` is cut at clause boundaries (``,`` ``;`` ``:`` and spaced
dashes), then between words. The punctuation and the abbreviations are those of tables.py, which
the normalizer reads too. Pure string work: importing this module loads nothing heavy.
"""

from __future__ import annotations

import re

from tts.text.tables import CLAUSE_PUNCTUATION, CLOSING_QUOTES, DOTTED_WORDS, SENTENCE_PUNCTUATION

MIN_CHARS = 20  # a chunk limit below this would cut most words' sentences into single words

_SENTENCE_END = re.compile(rf"(?<=[{re.escape(SENTENCE_PUNCTUATION)}])[{re.escape(CLOSING_QUOTES)}]*\s+")
_CLAUSE_END = re.compile(rf"(?<=[{re.escape(CLAUSE_PUNCTUATION)}])\s+|\s+(?=[—–-]\s)")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, not cut after abbreviations ("Dr.", "fig."), initials ("J. Smith") or
    before a lowercase word."""
    text = " ".join(text.split())
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].rstrip(CLOSING_QUOTES)
        last_word = before.rsplit(" ", 1)[-1].rstrip(SENTENCE_PUNCTUATION).lower()
        if before.endswith(".") and (last_word in DOTTED_WORDS or (len(last_word) == 1 and last_word.isalpha())):
            continue
        if text[match.end():match.end() + 1].islower():  # "at 5 p.m. on Monday", '"Really?" she asked'
            continue
        pieces.append(text[start:match.start()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    chunks: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if chunks and len(chunks[-1]) + 1 + len(clause) <= max_chars:
            chunks[-1] = f"{chunks[-1]} {clause}"
        elif len(clause) <= max_chars:
            chunks.append(clause)
        else:  # no clause boundary close enough: cut between words
            current = ""
            for word in clause.split():
                if current and len(current) + 1 + len(word) > max_chars:
                    chunks.append(current)
                    current = word
                else:
                    current = f"{current} {word}".strip()
            chunks.append(current)
    return [c for c in chunks if c.strip()]


def split_text(text: str, max_chars: int) -> list[str]:
    """Sentences, with over-long ones cut at clause boundaries (then between words), each at most
    ``max_chars`` long unless a single word is longer."""
    if max_chars < MIN_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_CHARS}, got {max_chars}")
    return [chunk for sentence in split_sentences(text) for chunk in _split_long(sentence, max_chars)]
