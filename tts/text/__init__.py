"""The offline English text frontend: normalize -> grapheme to phoneme -> symbol ids.

Importing this package is cheap (no torch, no nltk, no numpy); the CMU dictionary, homographs and
the neural G2P model are read on first use by a Frontend.

>>> from tts.text import Frontend, SymbolTable
>>> frontend = Frontend()
>>> frontend.normalize("It's 3:30 pm.")
"it's three thirty P M ."
>>> ids = frontend.text_to_ids("Hello.", SymbolTable.default())
"""

from tts.text.frontend import Frontend, TextError
from tts.text.normalize import normalize
from tts.text.symbols import SymbolTable

__all__ = ["Frontend", "SymbolTable", "TextError", "normalize"]
