"""Text of any length -> audio, as a generator: plan -> render -> assemble.

- **plan**: texts are cut into chunks (tts.text.sentences: sentences, over-long ones at clause
  boundaries) and encoded to symbol ids lazily, a window of ``window_chunks(settings)`` chunks at
  a time; within a window the chunks are sorted by length and cut into batches of ``batch_size``.
- **render** (``render``): one batch through Tacotron (Voice.mels_from_ids), the speed change and
  the vocoder (Voice.vocode) -> one waveform per chunk. The server's scheduler calls the same
  function on batches it composes from concurrent requests.
- **assemble**: ``stream`` yields the rendered chunks in text order as each window finishes;
  ``synthesize_texts`` joins them per text into a Speech, ``stream_audio`` hands one text's audio
  out piece by piece (silences included) and ``write_audio_stream`` writes it to a file as it comes,
  so memory stays flat for any text length: only one window's waveforms are held.

The same texts, settings and seed give the same samples through every entry point as long as the
same chunks share a batch (the prenet noise of a chunk depends on its batch). Texts of at most one
window (32 chunks at the default batch size) are batched exactly as they were before streaming.

Importing this module loads no torch (the CLI reads its limits while building --help).
"""

from __future__ import annotations

import base64
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from tts.errors import TTSError
from tts.memory import release_freed_memory
from tts.text import sentences as _sentences
from tts.text.sentences import split_sentences
from tts.vocoders import VOCODER_NAMES

if TYPE_CHECKING:
    import torch

    from tts.config import AudioConfig

log = logging.getLogger(__name__)

__all__ = ["MAX_CHARS", "VOCODERS", "SPEED_RANGE", "MAX_SILENCE", "SynthesisError", "SynthesisSettings", "Chunk",
           "Rendered", "Speech", "SpeechInfo", "split_sentences", "split_text", "change_speed", "render", "stream",
           "stream_audio", "synthesize_texts", "write_audio_stream", "write_wav_stream", "save_mel_plot", "save_alignment_plot"]

MAX_CHARS = 250
VOCODERS = ("auto",) + VOCODER_NAMES  # what a user may ask for
SPEED_RANGE = (0.25, 4.0)
MAX_SILENCE = 10.0  # seconds; more is surely a unit mistake (milliseconds given as seconds)
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit value
PLOTTED_SENTENCES = 30  # an alignment figure shows at most this many sentences
WINDOW_BATCHES = 4  # a plan window holds this many batches: the audio held at once while streaming


class SynthesisError(TTSError):
    """A synthesis setting out of range; the message names the setting and the allowed values."""


def _number(name: str, value, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TypeError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {type(value).__name__}")


def check_speed(speed: float) -> None:
    _number("speed", speed, float)
    low, high = SPEED_RANGE
    if not (math.isfinite(speed) and low <= speed <= high):
        raise SynthesisError(f"speed must be between {low} and {high}, got {speed}")


def check_silence(seconds: float) -> None:
    _number("sentence silence", seconds, float)
    if not (math.isfinite(seconds) and 0.0 <= seconds <= MAX_SILENCE):
        raise SynthesisError(f"sentence silence must be between 0 and {MAX_SILENCE} seconds, got {seconds}")


@dataclass(frozen=True)
class SynthesisSettings:
    """How to speak, shared by tts synth, tts batch, the Python API and the server. Validated on
    construction: a value out of range raises SynthesisError, a wrong type TypeError."""

    vocoder: str = "auto"  # auto: the card's preferred vocoder when the voice has it, else Griffin-Lim
    seed: Optional[int] = None  # prenet dropout, WaveNet draws and Griffin-Lim's phase all follow it
    speed: float = 1.0  # 1.2 is 20% faster; the mel is stretched in time, so pitch stays
    sentence_silence: float = 0.3  # seconds between chunks
    batch_size: int = 8  # chunks per model call
    max_chars: int = MAX_CHARS  # longest chunk handed to the acoustic model

    def __post_init__(self) -> None:
        if self.vocoder not in VOCODERS:
            raise SynthesisError(f"unknown vocoder {self.vocoder!r}; use {', '.join(VOCODERS)}")
        if self.seed is not None:
            _number("seed", self.seed, int)
            if not 0 <= self.seed <= MAX_SEED:
                raise SynthesisError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
        _number("batch size", self.batch_size, int)
        if self.batch_size < 1:
            raise SynthesisError(f"batch size must be at least 1, got {self.batch_size}")
        _number("max_chars", self.max_chars, int)
        if self.max_chars < _sentences.MIN_CHARS:
            raise SynthesisError(f"max_chars must be at least {_sentences.MIN_CHARS}, got {self.max_chars}")
        check_speed(self.speed)
        check_silence(self.sentence_silence)


def window_chunks(settings: SynthesisSettings) -> int:
    """Chunks planned (and waveforms held) at a time."""
    return WINDOW_BATCHES * settings.batch_size


def split_text(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """tts.text.sentences.split_text with the synthesis default limit; a limit under
    tts.text.sentences.MIN_CHARS raises SynthesisError."""
    try:
        return _sentences.split_text(text, max_chars)
    except ValueError as err:
        raise SynthesisError(str(err)) from None


def change_speed(mel: torch.Tensor, speed: float) -> torch.Tensor:
    """Stretch a mel (n_mels, T) in time -> (n_mels, round(T / speed)): speed 2.0 halves the
    duration without changing pitch."""
    import torch

    if speed == 1.0:
        return mel
    check_speed(speed)
    frames = max(1, round(mel.shape[1] / speed))
    return torch.nn.functional.interpolate(mel[None], size=frames, mode="linear", align_corners=True)[0]


@dataclass(frozen=True, eq=False)
class Chunk:
    """One planned piece of a text: ``position`` is its place among the text's spoken chunks."""

    text_index: int
    position: int
    text: str
    ids: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Rendered:
    """A chunk spoken: wav (T,) float32 in [-1, 1]; mel (n_mels, T / hop) as vocoded and alignment
    (decoder steps, symbols) on the CPU only when details were asked for."""

    chunk: Chunk
    wav: np.ndarray
    stop_reason: str
    mel: Optional[torch.Tensor] = None
    alignment: Optional[torch.Tensor] = None


@dataclass(frozen=True, eq=False)
class Failure:
    """A text with nothing speakable: its error, in its place in the stream."""

    text_index: int
    error: Exception


def render(voice, chunks: Sequence[Chunk], *, speeds: Sequence[float], vocoder: str, seed: Optional[int],
           details: bool = False, progress: bool = False) -> list[Rendered]:
    """One batch: chunks -> Tacotron as one padded batch -> per-chunk speed change -> the vocoder
    as one batch. ``speeds`` has one value per chunk (the server batches requests of different
    speeds together)."""
    outputs = voice.mels_from_ids([chunk.ids for chunk in chunks], seed=seed)
    mels = [change_speed(out["mel"], speed) for out, speed in zip(outputs, speeds)]
    wavs = voice.vocode(mels, vocoder=vocoder, seed=seed, progress=progress)
    rendered = [Rendered(chunk, wav, out["stop_reason"], mel.cpu() if details else None,
                         out["alignment"] if details else None)
                for chunk, wav, out, mel in zip(chunks, wavs, outputs, mels)]
    del outputs, mels
    release_freed_memory()  # the batch's temporaries: see tts/memory.py
    return rendered


def plan(voice, texts: Sequence[str], settings: SynthesisSettings) -> Iterator[Union[Chunk, Failure]]:
    """Chunks in text order, encoded as they are reached; a Failure after the last chunk of a
    text that had nothing speakable in it (a chunk with nothing speakable alone is left out)."""
    from tts.text import TextError

    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__} at position {index}")
        problem: Exception = TextError("the text is empty")
        kept = 0
        for piece in split_text(text, settings.max_chars):
            try:
                ids = voice.encode(piece)
            except TextError as err:  # nothing speakable in this chunk alone; the text may still have some
                problem = err
                continue
            yield Chunk(index, kept, piece, tuple(ids))
            kept += 1
        if not kept:
            yield Failure(index, problem)


def stream(voice, texts: Sequence[str], settings: SynthesisSettings, *, errors: str = "raise", details: bool = False,
           progress: bool = False) -> Iterator[Union[Rendered, Failure]]:
    """Rendered chunks of every text in text order, one window at a time; a text with nothing
    speakable raises its TextError (errors="raise") or comes as a Failure (errors="return")."""
    from tqdm import tqdm

    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    window = window_chunks(settings)
    total = sum(len(split_text(text, settings.max_chars)) for text in texts if isinstance(text, str))
    one_batch = total <= settings.batch_size
    bar = tqdm(total=total, unit="sentence", desc="synth", disable=not progress or one_batch, leave=False)

    def flush(items: list) -> Iterator[Union[Rendered, Failure]]:
        chunks = [item for item in items if isinstance(item, Chunk)]
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].ids))
        done: dict[int, Rendered] = {}
        for start in range(0, len(order), settings.batch_size):
            group = [chunks[i] for i in order[start:start + settings.batch_size]]
            for rendered in render(voice, group, speeds=[settings.speed] * len(group), vocoder=settings.vocoder,
                                   seed=settings.seed, details=details, progress=progress and one_batch):
                done[id(rendered.chunk)] = rendered
            bar.update(len(group))
        for item in items:
            if isinstance(item, Failure):
                if errors == "raise":
                    raise item.error
                yield item
            else:
                yield done.pop(id(item))

    try:
        pending: list = []
        count = 0
        for item in plan(voice, texts, settings):
            if isinstance(item, Failure) and errors == "raise":
                raise item.error
            pending.append(item)
            count += isinstance(item, Chunk)
            if count == window:
                yield from flush(pending)
                pending, count = [], 0
        yield from flush(pending)
    finally:
        bar.close()


@dataclass(frozen=True, eq=False)
class SpeechInfo:
    """What was spoken, without the audio (it went to a file): as Speech, less ``wav``."""

    samples: int
    sample_rate: int
    sentences: tuple[str, ...]
    stop_reasons: tuple[str, ...]
    mels: tuple = ()
    alignments: tuple = ()

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


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
    def samples(self) -> int:
        return len(self.wav)

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate

    def save(self, path: Union[str, Path], *, fmt: Optional[str] = None) -> None:
        """Write the audio to ``path`` ("-": stdout, wav) in the format its extension names (.wav,
        .flac, .ogg, .mp3, ...; tts.formats) or ``fmt``; a file appears whole or not at all."""
        write_audio_stream(path, [self.wav], self.sample_rate, fmt=fmt)

    def _repr_html_(self) -> str:  # a player in Jupyter notebooks
        from tts.audio import wav_bytes

        data = base64.b64encode(wav_bytes(self.wav, self.sample_rate)).decode("ascii")
        return (f'<audio controls src="data:audio/wav;base64,{data}"></audio>'
                f"<div>{self.seconds:.2f} s, {len(self.sentences)} sentence(s)</div>")


def silence(voice, settings: SynthesisSettings) -> np.ndarray:
    return np.zeros(round(settings.sentence_silence * voice.sample_rate), dtype=np.float32)


def synthesize_texts(voice, texts: Sequence[str], settings: Optional[SynthesisSettings] = None, *,
                     errors: str = "raise", details: bool = False, progress: bool = False,
                     **options) -> list[Union[Speech, Exception]]:
    """Speak each text (any length) with ``voice`` (a tts.voice.Voice); one Speech per text.

    ``settings`` (or its fields as keyword ``options``: vocoder, seed, speed, sentence_silence,
    batch_size, max_chars) say how. The chunks of all texts are synthesized together in
    length-sorted batches and joined per text with ``sentence_silence`` seconds of silence. A chunk
    with nothing speakable ("—", an emoji) is left out; a text with nothing speakable at all raises
    TextError, or with errors="return" gives the exception in its slot while the other texts go on.
    ``progress`` shows a bar over sentences when there is more than one batch, else the vocoder's own bar.
    """
    settings = _settings(settings, options)
    parts: dict[int, list[Rendered]] = {}
    failures: dict[int, Exception] = {}
    for item in stream(voice, texts, settings, errors=errors, details=details, progress=progress):
        if isinstance(item, Failure):
            failures[item.text_index] = item.error
        else:
            parts.setdefault(item.chunk.text_index, []).append(item)
    gap = silence(voice, settings)
    spoken: list[Union[Speech, Exception]] = []
    for index in range(len(texts)):
        if index in failures:
            spoken.append(failures[index])
            continue
        rendered = parts.pop(index)
        pieces = []
        for n, piece in enumerate(rendered):
            if n:
                pieces.append(gap)
            pieces.append(piece.wav)
        spoken.append(Speech(
            wav=np.concatenate(pieces).astype(np.float32, copy=False), sample_rate=voice.sample_rate,
            sentences=tuple(r.chunk.text for r in rendered), stop_reasons=tuple(r.stop_reason for r in rendered),
            mels=tuple(r.mel for r in rendered) if details else (),
            alignments=tuple(r.alignment for r in rendered) if details else (),
        ))
    return spoken


def _settings(settings: Optional[SynthesisSettings], options: dict) -> SynthesisSettings:
    if settings is None:
        return SynthesisSettings(**options)
    if options:
        raise TypeError(f"give either settings or its fields, not both (got {', '.join(sorted(options))})")
    if not isinstance(settings, SynthesisSettings):
        raise TypeError(f"settings must be a SynthesisSettings, got {type(settings).__name__}")
    return settings


def stream_audio(voice, text: str, settings: SynthesisSettings, *, details: bool = False, progress: bool = False,
                 record: Optional[list] = None) -> Iterator[np.ndarray]:
    """One text's audio, (T_i,) float32 pieces in order with the silences between them, as the
    windows finish. ``record``, when given, gets each Rendered chunk (with its wav dropped unless
    it is needed later) so the caller can report sentences and stop reasons afterwards."""
    gap = silence(voice, settings)
    for n, item in enumerate(stream(voice, [text], settings, details=details, progress=progress)):
        if n and len(gap):
            yield gap
        yield item.wav
        if record is not None:
            record.append(Rendered(item.chunk, np.zeros(0, np.float32), item.stop_reason, item.mel, item.alignment))


def write_audio_stream(path: Union[str, Path], pieces: Iterable[np.ndarray], sample_rate: int, *,
                       fmt: Optional[str] = None) -> int:
    """Write float32 pieces as one 16-bit mono file while they come; returns the sample count.

    The format is ``fmt``, or the one ``path``'s extension names (tts.formats.format_for_path:
    .wav, .flac, .ogg, .mp3, .pcm, ...; "-", stdout, is wav), checked before the first piece is
    asked for. The audio goes to a temporary file (beside ``path``, or in the temp directory for
    "-") that libsndfile encodes into as the pieces come and finishes when the last is in; only
    then is it renamed into place (or copied to stdout): a failure part way leaves the old file, or
    nothing, and never a torn one.
    """
    import shutil
    import sys

    import soundfile as sf

    from tts.audio import _umask as audio_umask
    from tts.formats import ENCODINGS, format_for_path

    container, subtype = ENCODINGS[format_for_path(str(path), sample_rate=sample_rate, explicit=fmt)].sndfile
    to_stdout = str(path) == "-"
    directory = None if to_stdout else (Path(path).parent if str(Path(path).parent) else Path("."))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tts-synth." if to_stdout else f".{Path(path).name}.",
                               suffix=".tmp")
    samples = 0
    try:
        with os.fdopen(fd, "w+b") as raw:
            with sf.SoundFile(raw, "w", samplerate=sample_rate, channels=1, format=container, subtype=subtype,
                              endian="LITTLE" if container == "RAW" else "FILE") as out:
                for piece in pieces:
                    out.write(np.clip(piece, -1.0, 1.0))
                    samples += len(piece)
            raw.flush()
            if to_stdout:
                raw.seek(0)
                shutil.copyfileobj(raw, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                os.fsync(raw.fileno())
        if to_stdout:
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o666 & ~audio_umask())  # mkstemp's 0600 is not what a user expects of an output
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return samples


def write_wav_stream(path: Union[str, Path], pieces: Iterable[np.ndarray], sample_rate: int) -> int:
    """``write_audio_stream`` in wav whatever ``path``'s extension."""
    return write_audio_stream(path, pieces, sample_rate, fmt="wav")


def synthesize_to_file(voice, text: str, path: Union[str, Path], settings: SynthesisSettings, *,
                       fmt: Optional[str] = None, details: bool = False, progress: bool = False) -> SpeechInfo:
    """``text`` spoken into ``path`` ("-": stdout) in the format its extension names, or ``fmt``
    (``write_audio_stream``), with memory that does not grow with the text (the audio is written as
    it is made); what was spoken comes back as a SpeechInfo."""
    record: list[Rendered] = []
    samples = write_audio_stream(path, stream_audio(voice, text, settings, details=details, progress=progress,
                                                    record=record), voice.sample_rate, fmt=fmt)
    return SpeechInfo(samples=samples, sample_rate=voice.sample_rate, sentences=tuple(r.chunk.text for r in record),
                      stop_reasons=tuple(r.stop_reason for r in record),
                      mels=tuple(r.mel for r in record) if details else (),
                      alignments=tuple(r.alignment for r in record) if details else ())


def save_mel_plot(speech: Union[Speech, SpeechInfo], path: Union[str, Path], *, audio: AudioConfig) -> None:
    """PNG of the whole utterance's mel as vocoded: the chunks' (n_mels, T_i) mels side by side with
    the sentence silences between them; time in seconds across, mel bin up. ``audio`` is the
    voice's audio config (voice.audio)."""
    from tts.audio import atomic_write, mel_silence
    from tts.plot import draw_mel, figure, png_bytes

    if not speech.mels:
        raise ValueError("this Speech was made without details=True; it has no mels to plot")
    hop_length = audio.hop_length
    silent_frames = max(0, round(speech.samples / hop_length) - sum(m.shape[1] for m in speech.mels))
    gap = np.full((speech.mels[0].shape[0], silent_frames), mel_silence(audio), dtype=np.float32)
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


def save_alignment_plot(speech: Union[Speech, SpeechInfo], path: Union[str, Path]) -> None:
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
