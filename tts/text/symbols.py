"""The symbol table: phoneme, punctuation and control tokens <-> integer ids.

A trained voice stores its table (``to_dict()``) beside its weights and rebuilds it with
``from_dict()``, so a voice always encodes text with the ids it was trained on, even if
``SymbolTable.default()`` changes later.
"""

from __future__ import annotations

from typing import Iterable, Sequence

PAD = "<pad>"
EOS = "<eos>"
WORD_BOUNDARY = "|"
# Sentence punctuation kept as tokens: the acoustic model learns pauses and intonation from them.
PUNCTUATION = (",", ".", "?", "!", ";", ":")
CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH",
              "T", "TH", "V", "W", "Y", "Z", "ZH")
VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
# ARPAbet as in the CMU dictionary: vowels always carry stress 0 (none), 1 (primary) or 2 (secondary).
PHONEMES = tuple(sorted(CONSONANTS + tuple(v + s for v in VOWELS for s in "012")))


class SymbolTable:
    """An ordered list of unique symbols; the id of a symbol is its index. ``pad_id`` is always 0.

    >>> table = SymbolTable.default()
    >>> table.decode(table.encode(["HH", "AH0", "L", "OW1", "."]))
    ['HH', 'AH0', 'L', 'OW1', '.']
    """

    def __init__(self, symbols: Sequence[str], *, eos: str = EOS):
        symbols = list(symbols)
        bad = [s for s in symbols if not isinstance(s, str) or not s or s != s.strip()]
        if bad:
            raise ValueError(f"symbols must be non-empty strings without surrounding spaces, got {bad!r}")
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate symbols in the table: {duplicates}")
        if not symbols or symbols[0] != PAD:
            raise ValueError(f"the first symbol (id 0) must be the padding {PAD!r}, got {symbols[:1]}")
        if eos not in symbols:
            raise ValueError(f"the end-of-sequence symbol {eos!r} is not in the table")
        self._symbols = tuple(symbols)
        self._ids = {s: i for i, s in enumerate(symbols)}
        self.pad_id = 0
        self.eos_id = self._ids[eos]

    @classmethod
    def default(cls) -> "SymbolTable":
        """Padding, end of sequence, word boundary, punctuation, then the 69 stressed ARPAbet phonemes."""
        return cls([PAD, EOS, WORD_BOUNDARY, *PUNCTUATION, *PHONEMES])

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def __len__(self) -> int:
        return len(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SymbolTable) and (self._symbols, self.eos_id) == (other._symbols, other.eos_id)

    def __repr__(self) -> str:
        return f"SymbolTable({len(self)} symbols)"

    def encode(self, phonemes: Iterable[str]) -> list[int]:
        """Symbols -> ids, with the end-of-sequence id appended. Raises ValueError naming an unknown symbol."""
        ids = []
        for symbol in phonemes:
            try:
                ids.append(self._ids[symbol])
            except KeyError:
                raise ValueError(f"symbol {symbol!r} is not in this voice's symbol table "
                                 f"({len(self)} symbols)") from None
        ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> symbols, leaving out padding and end of sequence, so decode(encode(x)) == x."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._symbols):
                raise ValueError(f"symbol id {i} is out of range for a table of {len(self)} symbols")
            if i not in (self.pad_id, self.eos_id):
                out.append(self._symbols[i])
        return out

    def to_dict(self) -> dict:
        """A JSON-serialisable description; ``from_dict(to_dict())`` gives an equal table."""
        return {"symbols": list(self._symbols), "pad_id": self.pad_id, "eos_id": self.eos_id}

    @classmethod
    def from_dict(cls, data: dict) -> "SymbolTable":
        """Rebuild a table saved with a voice; raises ValueError on anything inconsistent."""
        if not isinstance(data, dict):
            raise ValueError(f"a symbol table must be a dict, got {type(data).__name__}")
        expected = {"symbols", "pad_id", "eos_id"}
        if set(data) != expected:
            raise ValueError(f"a symbol table has the keys {sorted(expected)}, got {sorted(data)}")
        symbols, pad_id, eos_id = data["symbols"], data["pad_id"], data["eos_id"]
        if not isinstance(symbols, list):
            raise ValueError(f"symbol table 'symbols' must be a list, got {type(symbols).__name__}")
        for name, value in (("pad_id", pad_id), ("eos_id", eos_id)):
            if type(value) is not int or not 0 <= value < len(symbols):
                raise ValueError(f"symbol table {name}={value!r} is not an index into its {len(symbols)} symbols")
        if pad_id != 0:
            raise ValueError(f"symbol table pad_id must be 0, got {pad_id}")
        if eos_id == pad_id:
            raise ValueError("symbol table eos_id and pad_id must differ")
        return cls(symbols, eos=symbols[eos_id])
