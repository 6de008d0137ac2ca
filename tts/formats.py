"""The audio formats this package writes, all through libsndfile (the soundfile package): what
`tts synth -o FILE` picks from FILE's extension and what `tts serve` answers in.

    format_for_path("hello.flac", sample_rate=22050) -> "flac"
    available(22050) -> ["wav", "pcm", "flac", "ogg", "mp3"]   # what the installed libsndfile writes

"pcm" is headerless little-endian 16-bit mono at the voice's rate (what `aplay -f S16_LE` and
OpenAI's ``response_format=pcm`` take). This module imports nothing heavy at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tts.errors import TTSError

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the only rates Opus encodes


class FormatError(TTSError):
    """An output format that is unknown, or that the installed libsndfile cannot write."""


@dataclass(frozen=True)
class Encoding:
    name: str
    media_type: str
    streamed: bool  # a server can send it piece by piece as the audio is made
    sndfile: tuple[str, str]  # (format, subtype) for soundfile


ENCODINGS = {
    "wav": Encoding("wav", "audio/wav", True, ("WAV", "PCM_16")),
    "pcm": Encoding("pcm", "audio/pcm", True, ("RAW", "PCM_16")),
    "flac": Encoding("flac", "audio/flac", False, ("FLAC", "PCM_16")),
    "ogg": Encoding("ogg", "audio/ogg", False, ("OGG", "VORBIS")),
    "opus": Encoding("opus", "audio/ogg", False, ("OGG", "OPUS")),
    "mp3": Encoding("mp3", "audio/mpeg", False, ("MP3", "MPEG_LAYER_III")),
}

EXTENSIONS = {".wav": "wav", ".wave": "wav", ".pcm": "pcm", ".raw": "pcm", ".flac": "flac", ".ogg": "ogg",
              ".oga": "ogg", ".opus": "opus", ".mp3": "mp3"}


def available(sample_rate: Optional[int]) -> list[str]:
    """The formats this process can write at ``sample_rate`` (None: at some rate)."""
    return [name for name in ENCODINGS if _unavailable(name, sample_rate) is None]


def _unavailable(name: str, sample_rate: Optional[int]) -> Optional[str]:
    """Why ``name`` cannot be written here at ``sample_rate`` (None: at some rate), or None."""
    import soundfile as sf

    fmt, subtype = ENCODINGS[name].sndfile
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        return f"the installed libsndfile ({sf.__libsndfile_version__}) cannot write {name}"
    if subtype == "OPUS" and sample_rate is not None and sample_rate not in OPUS_RATES:
        return (f"opus encodes only {', '.join(str(r) for r in OPUS_RATES)} Hz audio and this voice speaks at "
                f"{sample_rate} Hz")
    return None


def check_format(name: str, sample_rate: Optional[int]) -> str:
    """``name`` if it can be written here at ``sample_rate`` (None: at some rate); else
    FormatError saying what can."""
    if name not in ENCODINGS:
        raise FormatError(f"unknown audio format {name!r}; choose from {', '.join(ENCODINGS)}")
    reason = _unavailable(name, sample_rate)
    if reason:
        raise FormatError(f"{reason}; use one of {', '.join(available(sample_rate))}")
    return name


def format_for_path(path: str, *, sample_rate: Optional[int], explicit: Optional[str] = None) -> str:
    """The format to write ``path`` in: ``explicit`` when given, else the one its extension names
    ("-", stdout, is wav). FormatError when the extension names none, or names one that cannot be
    written here at ``sample_rate`` (None, before a voice is loaded: at some rate)."""
    if explicit is not None:
        return check_format(explicit, sample_rate)
    if path == "-":
        return check_format("wav", sample_rate)
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        usable = available(sample_rate)
        first = {}  # each usable format's first extension
        for ending, name in EXTENSIONS.items():
            if name in usable:
                first.setdefault(name, ending)
        endings = ", ".join(first.values())
        what = f"its extension {suffix!r} names no audio format" if suffix else "it has no extension to name its format"
        raise FormatError(f"cannot tell what audio format to write {path} in: {what}; end it in {endings} "
                          f"(or give --format)")
    return check_format(EXTENSIONS[suffix], sample_rate)
