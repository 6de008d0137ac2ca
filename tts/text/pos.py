"""A small rule-based part-of-speech tagger, just good enough to pick homograph pronunciations.

NLTK's perceptron tagger needs data that cannot be downloaded here, and homograph choice only needs
to tell a verb (and which verb form) from a noun or adjective. So each word is tagged from closed
word classes (determiners, pronouns, modals, prepositions, forms of be/have/do), its suffix, and the
tag of the word before it, skipping adverbs:

    to / will / can / did / don't ... + W           -> VB   "I want to live here", "I will record it"
    a / the / my / of / new / two ... + W           -> NN   "a live concert", "a new record"
    am / is / was ... + W                           -> VBN for -ed and "read", else JJ ("I am content")
    have / has / had + W                            -> VBN for -ed and "read", else NN
    I / we / they / you / who + W                   -> VBP (VBD for -ed, or "read" with yesterday/ago/last)
    he / she / it + W                               -> VBZ for -s, VBD for -ed and "read", else NN/JJ
    plural noun + W                                 -> VBP   "the kids record songs"
    sentence start + W + the / a / it / my ...      -> VB    "Close the door"
    W1 and W                                        -> W takes W1's kind   "to read and record"

Content words get Penn Treebank tags (VB VBD VBN VBP VBZ VBG NN NNS JJ RB), as homographs.en expects;
function words get the name of their class (DT, MD, TO, IN, CC, BE, HV, PRP, PRP3, PRPO, POS, CD).
"""

from __future__ import annotations

from typing import Optional, Sequence

from tts.text.tables import PUNCTUATION_STRENGTH

DETERMINERS = frozenset("a an the this that these those some any no every each another either neither both all "
                        "which what whose my your his her its our their".split())
SUBJECTS = frozenset("i we they you who".split())  # a bare verb form follows
THIRD_PERSON = frozenset("he she it".split())  # an -s or past form follows
OBJECTS = frozenset("me us them him".split())
MODALS = frozenset("to will would can could shall should may might must do does did let let's cannot please".split())
BE = frozenset("am is are was were be been being it's he's she's that's there's what's".split())
HAVE = frozenset("have has had having".split())
PREPOSITIONS = frozenset("of in on at for with from by about into onto over under after before between through "
                         "during without within against among upon across behind beyond near toward towards than "
                         "via per around along".split())
CONJUNCTIONS = frozenset("and or but nor".split())
ADVERBS = frozenset("not never also just still often always already sometimes usually really even only then "
                    "soon again ever rarely seldom actually probably certainly".split())
NUMBERS = frozenset("one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
                    "sixty seventy eighty ninety hundred thousand million billion several many few".split())
ADJECTIVES = frozenset("new old good bad big small great little long short high low first last next other same own "
                       "more most best better worse worst young large whole free full real true public private "
                       "local national international recent early late main major minor final only whole "
                       "entire big huge tiny perfect".split())
ADJECTIVE_SUFFIXES = ("ous", "ful", "ive", "able", "ible", "less", "ical")
PAST_CUES = frozenset("yesterday ago last earlier previously once".split())
# Verbs whose past tense is spelled like the present, so only context tells them apart.
SAME_PAST = frozenset("read reread misread proofread".split())
PUNCTUATION = frozenset(PUNCTUATION_STRENGTH)


def _plural(word: str) -> bool:
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s"))


def _guess(word: str) -> str:
    """A content word with no helpful context: adjective, plural or singular noun by its spelling."""
    if word in ADJECTIVES or (len(word) > 5 and word.endswith(ADJECTIVE_SUFFIXES)):
        return "JJ"
    if word.endswith("ing"):
        return "VBG"
    if word.endswith("ed"):
        return "VBD"
    if word.endswith("ly"):
        return "RB"
    return "NNS" if _plural(word) else "NN"


def _closed(word: str) -> Optional[str]:
    """The tag of a function word, or None for a content word."""
    if word in PUNCTUATION:
        return word
    if word.endswith(("'ll", "'d", "n't")) or word in MODALS:
        return "TO" if word == "to" else "MD"
    for words, penn_tag in ((DETERMINERS, "DT"), (SUBJECTS, "PRP"), (THIRD_PERSON, "PRP3"), (OBJECTS, "PRPO"),
                            (BE, "BE"), (HAVE, "HV"), (PREPOSITIONS, "IN"), (CONJUNCTIONS, "CC"),
                            (ADVERBS, "RB"), (NUMBERS, "CD")):
        if word in words:
            return penn_tag
    if word.endswith(("'re", "'m")):
        return "BE"
    if word.endswith("'ve"):
        return "HV"
    if word.endswith("'s"):
        return "POS"  # possessive ("John's"): a noun follows
    return None


def _verb(word: str, past: bool, third_person: bool) -> Optional[str]:
    if word.endswith("ed") or (past and word in SAME_PAST):
        return "VBD"
    if word.endswith("ing"):
        return "VBG"
    if _plural(word) or word.endswith("es"):
        return "VBZ"
    return None if third_person else "VBP"


def _content(word: str, prev: Optional[str], prev_prev: Optional[str], next_word: Optional[str], past: bool) -> str:
    """The tag of a content word from the (adverb-skipped) tag before it and the word after it."""
    if prev is None or prev in PUNCTUATION:
        if next_word is not None and (next_word in DETERMINERS or next_word in OBJECTS or next_word == "it"):
            return "VBG" if word.endswith("ing") else "VB"  # imperative: "Close the door."
        return _guess(word)
    if prev in ("MD", "TO"):
        if word.endswith("ing"):
            return "VBG"
        return "NNS" if prev == "TO" and _plural(word) else "VB"
    if prev == "BE":
        if word.endswith("ed") or word in SAME_PAST:
            return "VBN"
        return "VBG" if word.endswith("ing") else "JJ"
    if prev == "HV":
        if word.endswith("ed") or word in SAME_PAST:
            return "VBN"
        return _guess(word)
    if prev in ("DT", "IN", "CD", "JJ", "POS", "PRPO"):
        guess = _guess(word)
        return guess if guess in ("JJ", "NNS") else "NN"
    if prev == "PRP":
        return _verb(word, past, third_person=False) or "VBP"
    if prev == "PRP3":  # "she read it" is past: the present would be "she reads"
        return _verb(word, past or word in SAME_PAST, third_person=True) or _guess(word)
    if prev == "CC" and prev_prev is not None:
        if prev_prev.startswith("VB"):
            return _verb(word, past, third_person=False) or "VB"
        if prev_prev.startswith("NN"):
            return "NNS" if _plural(word) else "NN"
    if prev == "NNS":
        return _verb(word, past, third_person=False) or "VBP"
    if prev == "NN" and (word.endswith("s") and not word.endswith("ss")):
        return "VBZ"  # "the band records"
    if prev.startswith("VB"):
        guess = _guess(word)
        return guess if guess in ("JJ", "NNS", "VBG") else "NN"  # an object: "they like live music"
    return _guess(word)


def tag(tokens: Sequence[str]) -> list[str]:
    """Tokens (lowercase words, uppercase letters of initialisms, punctuation) -> one tag per token.

    >>> tag(["i", "will", "record", "it"])[2], tag(["a", "new", "record"])[2]
    ('VB', 'NN')
    """
    words = [t if t.isupper() else t.lower() for t in tokens]
    past = any(w in PAST_CUES for w in words)
    tags: list[str] = []
    for i, word in enumerate(words):
        if word.isupper():
            tags.append("NNP")
            continue
        closed = _closed(word)
        if closed is not None:
            tags.append(closed)
            continue
        # The nearest tag before this word, looking past adverbs ("will not record", "can also read").
        j = i - 1
        while j >= 0 and tags[j] == "RB":
            j -= 1
        prev = tags[j] if j >= 0 else None
        prev_prev = tags[j - 1] if j >= 1 else None
        next_word = words[i + 1] if i + 1 < len(words) else None
        tags.append(_content(word, prev, prev_prev, next_word, past))
    return tags
