"""Text of any length -> audio: sentence splitting, batched synthesis, joining with pauses.

Long inputs are cut into sentences, and sentences longer than ``max_chars`` at clause boundaries
(then between words), so attention never has to cover more than it was trained on and memory stays
bounded: only ``batch_size`` chunks are in the models at a time, and what is kept between batches is
each chunk's waveform (plus its mel and alignment when ``details`` is asked for).

Importing this module loads no torch (the CLI reads its limits while building --help).
This is the one synthesis path: the Python API (tts.api), `tts synth` and `tts batch` all call
``synthesize_texts``.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from tts.errors import TTSError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "no", "approx", "mt", "gen",
    "col", "lt", "sgt", "capt", "rev", "inc", "ltd", "co", "fig", "vol", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=[—–-]\s)")

MAX_CHARS = 250
VOCODERS = ("auto", "wavenet", "griffinlim")
SPEED_RANGE = (0.25, 4.0)
MAX_SILENCE = 10.0  # seconds; more is surely a unit mistake (milliseconds given as seconds)
PLOTTED_SENTENCES = 30  # an alignment figure shows at most this many sentences


class SynthesisError(TTSError):
    """A synthesis setting out of range; the message names the setting and the allowed values."""


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, not cut after abbreviations ("Dr."), initials ("J. Smith") or
    before a lowercase word."""
    text = " ".join(text.split())
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].rstrip("\"'”’)")
        last_word = before.rsplit(" ", 1)[-1].rstrip(".!?").lower()
        if before.endswith(".") and (last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())):
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


def split_text(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Sentences, with over-long ones cut at clause boundaries (then between words), each at most
    ``max_chars`` long unless a single word is longer."""
    if max_chars < 20:
        raise SynthesisError(f"max_chars must be at least 20, got {max_chars}")
    return [chunk for sentence in split_sentences(text) for chunk in _split_long(sentence, max_chars)]


def change_speed(mel: torch.Tensor, speed: float) -> torch.Tensor:
    """Stretch a mel (n_mels, T) in time -> (n_mels, round(T / speed)): speed 2.0 halves the
    duration without changing pitch."""
    import torch

    if speed == 1.0:
        return mel
    check_speed(speed)
    frames = max(1, round(mel.shape[1] / speed))
    return torch.nn.functional.interpolate(mel[None], size=frames, mode="linear", align_corners=True)[0]


def check_speed(speed: float) -> None:
    low, high = SPEED_RANGE
    if not low <= speed <= high:
        raise SynthesisError(f"speed must be between {low} and {high}, got {speed}")


def check_silence(seconds: float) -> None:
    if not 0.0 <= seconds <= MAX_SILENCE:
        raise SynthesisError(f"sentence silence must be between 0 and {MAX_SILENCE} seconds, got {seconds}")


@dataclass(frozen=True, eq=False)
class Speech:
    """One text spoken.

    wav: (T,) float32 in [-1, 1] at ``sample_rate``; ``sentences`` are the chunks the text was cut
    into, ``stop_reasons`` per chunk "stop" or "length_bound" (the model never decided to stop: a
    sign of an attention failure in a trained voice). ``mels`` (n_mels, T_i) as vocoded (after any
    speed change) and ``alignments`` (decoder steps, symbols) per chunk, on the CPU, are kept only
    when asked for (``details=True``).
    """

    wav: np.ndarray
    sample_rate: int
    sentences: tuple[str, ...]
    stop_reasons: tuple[str, ...]
    mels: tuple[torch.Tensor, ...] = ()
    alignments: tuple[torch.Tensor, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate

    def save(self, path: Union[str, Path]) -> None:
        """Write a 16-bit PCM wav ("-": stdout); a file appears whole or not at all."""
        from tts.audio import save_wav

        save_wav(path, self.wav, self.sample_rate)

    def _repr_html_(self) -> str:  # a player in Jupyter notebooks
        from tts.audio import wav_bytes

        data = base64.b64encode(wav_bytes(self.wav, self.sample_rate)).decode("ascii")
        return (f'<audio controls src="data:audio/wav;base64,{data}"></audio>'
                f"<div>{self.seconds:.2f} s, {len(self.sentences)} sentence(s)</div>")


def synthesize_texts(voice, texts: Sequence[str], *, vocoder: str = "auto", seed: Optional[int] = None,
                     sentence_silence: float = 0.3, speed: float = 1.0, batch_size: int = 8,
                     max_chars: int = MAX_CHARS, errors: str = "raise", details: bool = False,
                     progress: bool = False) -> list[Union[Speech, Exception]]:
    """Speak each text (any length) with ``voice`` (a tts.voice.Voice); one Speech per text.

    The chunks of all texts are synthesized together in length-sorted batches of ``batch_size``
    and joined per text with ``sentence_silence`` seconds of silence. A chunk with nothing
    speakable ("—", an emoji) is left out; a text with nothing speakable at all raises TextError,
    or with errors="return" gives the exception in its slot while the other texts go on.
    ``seed`` makes the output reproducible (the same texts, batch size and seed give the same
    audio). ``progress`` shows a bar over sentences when there is more than one batch, else the
    vocoder's own bar.
    """
    from tqdm import tqdm

    from tts.text import TextError

    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    if vocoder not in VOCODERS:
        raise SynthesisError(f"unknown vocoder {vocoder!r}; use {', '.join(VOCODERS)}")
    if batch_size < 1:
        raise SynthesisError(f"batch size must be at least 1, got {batch_size}")
    check_speed(speed)
    check_silence(sentence_silence)

    chunks: list[tuple[int, str, list[int]]] = []  # (text index, chunk text, symbol ids)
    failures: dict[int, Exception] = {}
    for index, text in enumerate(texts):
        encoded, problem = [], TextError("the text is empty")
        for piece in split_text(text, max_chars):
            try:
                encoded.append((index, piece, voice.encode(piece)))
            except TextError as err:  # nothing speakable in this chunk alone; the text may still have some
                problem = err
        if encoded:
            chunks += encoded
        elif errors == "raise":
            raise problem
        else:
            failures[index] = problem

    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i][2]))
    audio: dict[int, np.ndarray] = {}
    results: dict[int, dict] = {}
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    bar = tqdm(total=len(order), unit="sentence", desc="synth", disable=not progress or len(batches) < 2,
               leave=False)
    for group in batches:
        outputs = voice.mels_from_ids([chunks[i][2] for i in group], seed=seed)
        mels = [change_speed(out["mel"], speed) for out in outputs]
        wavs = voice.vocode(mels, vocoder=vocoder, seed=seed, progress=progress and len(batches) == 1)
        for i, wav, out, mel in zip(group, wavs, outputs, mels):
            audio[i] = wav
            results[i] = {"stop_reason": out["stop_reason"],
                          "mel": mel.cpu() if details else None, "alignment": out["alignment"] if details else None}
        bar.update(len(group))
    bar.close()

    by_text: dict[int, list[int]] = {}
    for i, (index, _, _) in enumerate(chunks):
        by_text.setdefault(index, []).append(i)
    silence = np.zeros(round(sentence_silence * voice.sample_rate), dtype=np.float32)
    spoken: list[Union[Speech, Exception]] = []
    for index in range(len(texts)):
        if index in failures:
            spoken.append(failures[index])
            continue
        parts = by_text[index]
        pieces = []
        for n, i in enumerate(parts):
            if n:
                pieces.append(silence)
            pieces.append(audio.pop(i))
        spoken.append(Speech(
            wav=np.concatenate(pieces).astype(np.float32, copy=False), sample_rate=voice.sample_rate,
            sentences=tuple(chunks[i][1] for i in parts), stop_reasons=tuple(results[i]["stop_reason"] for i in parts),
            mels=tuple(results[i]["mel"] for i in parts) if details else (),
            alignments=tuple(results[i]["alignment"] for i in parts) if details else (),
        ))
    return spoken


def save_mel_plot(speech: Speech, path: Union[str, Path], *, hop_length: int, log_floor: float) -> None:
    """PNG of the whole utterance's mel as vocoded: the chunks' (n_mels, T_i) mels side by side with
    the sentence silences between them; time in seconds across, mel bin up."""
    from tts.audio import atomic_write
    from tts.plot import draw_mel, figure, png_bytes

    if not speech.mels:
        raise ValueError("this Speech was made without details=True; it has no mels to plot")
    silent_frames = max(0, round(len(speech.wav) / hop_length) - sum(m.shape[1] for m in speech.mels))
    gap = np.full((speech.mels[0].shape[0], silent_frames), np.log(log_floor), dtype=np.float32)
    gaps = np.array_split(gap, max(1, len(speech.mels) - 1), axis=1)
    columns = []
    for n, mel in enumerate(speech.mels):
        if n:
            columns.append(gaps[n - 1])
        columns.append(mel.numpy())
    image = np.concatenate(columns, axis=1)
    seconds = image.shape[1] * hop_length / speech.sample_rate
    fig = figure(min(40.0, 4.0 + seconds), 3.5, dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    fig.colorbar(draw_mel(ax, image, f"mel spectrogram (log), {len(speech.mels)} sentence(s)", seconds=seconds), ax=ax)
    atomic_write(Path(path), png_bytes(fig))


def save_alignment_plot(speech: Speech, path: Union[str, Path]) -> None:
    """PNG of the attention alignment of each chunk (tts.plot.draw_alignment), the first
    PLOTTED_SENTENCES of them."""
    from tts.audio import atomic_write
    from tts.plot import draw_alignment, figure, png_bytes

    if not speech.alignments:
        raise ValueError("this Speech was made without details=True; it has no alignments to plot")
    shown = speech.alignments[:PLOTTED_SENTENCES]
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    fig = figure(4.5 * columns, 3.2 * rows + 0.4, dpi=80)
    for k, alignment in enumerate(shown):
        reason = "stopped" if speech.stop_reasons[k] == "stop" else "ran to the length bound"
        sentence = speech.sentences[k] if len(speech.sentences[k]) <= 40 else speech.sentences[k][:37] + "..."
        draw_alignment(fig.add_subplot(rows, columns, k + 1), alignment.numpy(), f"{k + 1}. {sentence}\n{reason}",
                       fontsize=8)
    if len(speech.alignments) > len(shown):
        fig.suptitle(f"the first {len(shown)} of {len(speech.alignments)} sentences")
    atomic_write(Path(path), png_bytes(fig))
