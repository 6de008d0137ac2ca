"""Text of any length -> audio: sentence splitting, batched synthesis, joining with pauses.

Long inputs are cut into sentences, and sentences longer than ``max_chars`` at clause boundaries
(then between words), so attention never has to cover more than it was trained on and memory stays
bounded: only ``batch_size`` chunks are in the models at a time.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Union

import numpy as np
import torch

# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "no", "approx", "mt", "gen",
    "col", "lt", "sgt", "capt", "rev", "inc", "ltd", "co", "fig", "vol", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=[—–-]\s)")

MAX_CHARS = 250


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, not cut after abbreviations ("Dr.") or initials ("J. Smith")."""
    text = " ".join(text.split())
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].rstrip("\"'”’)")
        last_word = before.rsplit(" ", 1)[-1].rstrip(".!?").lower()
        if before.endswith(".") and (last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())):
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
            words, current = clause.split(), ""
            for word in words:
                if current and len(current) + 1 + len(word) > max_chars:
                    chunks.append(current)
                    current = word
                else:
                    current = f"{current} {word}".strip()
            chunks.append(current)
    return [c for c in chunks if c.strip()]


def split_text(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Sentences, with over-long ones cut at clause boundaries, each at most ``max_chars`` long."""
    return [chunk for sentence in split_sentences(text) for chunk in _split_long(sentence, max_chars)]


def change_speed(mel: torch.Tensor, speed: float) -> torch.Tensor:
    """Stretch a mel (n_mels, T) in time: speed 2.0 halves the duration without changing pitch."""
    if speed == 1.0:
        return mel
    if not 0.25 <= speed <= 4.0:
        raise ValueError(f"speed must be between 0.25 and 4, got {speed}")
    frames = max(1, round(mel.shape[1] / speed))
    return torch.nn.functional.interpolate(mel[None], size=frames, mode="linear", align_corners=True)[0]


def synthesize_texts(voice, texts: Sequence[str], *, vocoder: str = "auto", seed: Optional[int] = None,
                     pause: float = 0.3, speed: float = 1.0, batch_size: int = 8, max_chars: int = MAX_CHARS,
                     errors: str = "raise", progress: bool = False, keep: Optional[list] = None
                     ) -> list[Union[np.ndarray, Exception]]:
    """Speak each text (any length) with ``voice``; returns one float32 waveform per text.

    Chunks of all texts are synthesized together in length-sorted batches of ``batch_size``.
    With errors="return", a text that fails (nothing speakable, say) gives its exception in its
    slot instead of stopping the others. ``keep``, when a list, receives per text the chunk
    results from Voice.mels (mel, alignment, stop_reason) for plotting.
    """
    from tqdm import tqdm

    from tts.text import TextError

    chunks: list[tuple[int, str]] = []
    failures: dict[int, Exception] = {}
    for index, text in enumerate(texts):
        try:
            pieces = split_text(text, max_chars)
            for piece in pieces:
                voice.frontend.phonemize(piece)  # raises TextError on nothing speakable
            if not pieces:
                raise TextError("the text is empty")
            chunks += [(index, piece) for piece in pieces]
        except TextError as err:
            if errors == "raise":
                raise
            failures[index] = err
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i][1]))
    audio: dict[int, np.ndarray] = {}
    details: dict[int, dict] = {}
    bar = tqdm(total=len(order), unit="sentence", desc="synth", disable=not progress or len(order) < 2, leave=False)
    for start in range(0, len(order), batch_size):
        group = order[start:start + batch_size]
        results = voice.mels([chunks[i][1] for i in group], seed=seed)
        mels = [change_speed(r["mel"], speed) for r in results]
        for i, wav, result in zip(group, voice.vocode(mels, vocoder=vocoder, seed=seed), results):
            audio[i] = wav
            details[i] = result
        bar.update(len(group))
    bar.close()

    silence = np.zeros(int(pause * voice.sample_rate), dtype=np.float32)
    outputs: list[Union[np.ndarray, Exception]] = []
    for index in range(len(texts)):
        if index in failures:
            outputs.append(failures[index])
            continue
        parts = [i for i in range(len(chunks)) if chunks[i][0] == index]
        pieces = []
        for n, i in enumerate(parts):
            if n:
                pieces.append(silence)
            pieces.append(audio[i])
        outputs.append(np.concatenate(pieces).astype(np.float32))
        if keep is not None:
            keep.append([details[i] for i in parts])
    return outputs
