"""The voice card (voice.json): read once, checked once, then used as a typed, frozen view.

A card describes a voice directory:

    {"format": 1,
     "symbols":  {"symbols": [...], "pad_id": 0, "eos_id": N},
     "acoustic": {"audio": {AudioConfig}, "config": {TacotronConfig}, "steps": N, "file": "acoustic.safetensors",
                  "dtype": "float32", "sha256": "..."},
     "vocoder":  {... the same with a WaveNetConfig ...},            (optional)
     "default_vocoder": "wavenet" | "griffinlim",                     (optional)
     "wavenet_temperature": 1.0,     the WaveNet's sampling temperature  (optional)
     "wavenet_unvoiced_temperature": 1.8,   ... in the frames the mel calls unvoiced (optional;
                                            tts.vocoders.voicing_temperatures)
     "metrics": {...}, "provenance": {...}}                           (optional, free-form)

``load_card`` checks every field against the config dataclasses of tts.config (an int is an int,
"0.5" is not a number), so a damaged card fails at load time with one line naming the file and the
field, never later inside a model. ``read_card`` / ``write_card`` / ``update_card`` handle the raw
dict, for the code that writes cards (training export, the ship and eval scripts).

This module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Optional, Union

from tts.config import AudioConfig, ConfigError, TacotronConfig, WaveNetConfig
from tts.errors import TTSError
from tts.vocoders import VOCODER_NAMES

CARD = "voice.json"
DEFAULT_VOICE = Path(__file__).resolve().parent / "voices" / "default"  # the voice shipped in the package
CARD_FORMAT = 1
PARTS = ("acoustic", "vocoder")
MAX_TEMPERATURE = 4.0
MODEL_CONFIGS = {"acoustic": TacotronConfig, "vocoder": WaveNetConfig}


class VoiceError(TTSError):
    """A voice directory that cannot be used; the message says what is missing or inconsistent."""


@dataclass(frozen=True)
class PartCard:
    """One trained part of a voice: its audio settings, model sizes and weights file."""

    audio: AudioConfig
    config: Union[TacotronConfig, WaveNetConfig]
    steps: int
    file: str
    dtype: str = "float32"
    sha256: Optional[str] = None  # of the weights file; cards written before it existed have none


@dataclass(frozen=True)
class VoiceCard:
    """A checked voice card. ``path`` is the voice.json it came from."""

    path: Path
    symbols: dict
    acoustic: Optional[PartCard]
    vocoder: Optional[PartCard]
    default_vocoder: str = "wavenet"
    wavenet_temperature: float = 1.0  # chosen per voice by measurement (docs/wavenet.md)
    wavenet_unvoiced_temperature: Optional[float] = None  # None: wavenet_temperature in every frame
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def weights(self, part: str) -> Path:
        return self.directory / getattr(self, part).file

    def vocoder_for(self, choice: str, available: Collection[str]) -> str:
        """The vocoder name ``choice`` ("auto" or one of tts.vocoders.VOCODER_NAMES) means for this
        voice, given the names of the vocoders it has loaded: auto is the card's default_vocoder when
        that one is loaded, else Griffin-Lim (which every voice has)."""
        if choice != "auto":
            return choice
        return self.default_vocoder if self.default_vocoder in available else "griffinlim"


def read_card(voice_dir: Union[str, Path]) -> dict:
    """The raw card of ``voice_dir`` as a dict (its format checked, nothing else)."""
    path = Path(voice_dir) / CARD
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VoiceError(f"{voice_dir} is not a voice: it has no {CARD} "
                         f"(a training run gets one when its acoustic stage finishes)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VoiceError(f"{path}: cannot read the voice card ({err})") from None
    if not isinstance(card, dict):
        raise VoiceError(f"{path}: the voice card must be a JSON object, got {type(card).__name__}")
    if card.get("format") != CARD_FORMAT:
        raise VoiceError(f"{path}: unknown card format {card.get('format')!r} (expected {CARD_FORMAT})")
    return card


def write_card(voice_dir: Union[str, Path], card: dict) -> None:
    from tts.audio import atomic_write

    atomic_write(Path(voice_dir) / CARD, (json.dumps(card, indent=2, sort_keys=True) + "\n").encode())


def update_card(voice_dir: Union[str, Path], change: Callable[[dict], None]) -> dict:
    """Read the card (a new one if there is none), apply ``change`` to it in place and write it
    back, holding a lock file beside it: the two stages of a run, trained side by side, export into
    the same card, and neither may lose the other's part. Returns the card as written."""
    from filelock import FileLock

    voice_dir = Path(voice_dir)
    with FileLock(voice_dir / f".{CARD}.lock"):
        card = read_card(voice_dir) if (voice_dir / CARD).is_file() else {"format": CARD_FORMAT}
        change(card)
        write_card(voice_dir, card)
    return card


def load_card(voice_dir: Union[str, Path]) -> VoiceCard:
    """Read and check the card of ``voice_dir``; raises VoiceError naming the file and the field."""
    path = Path(voice_dir) / CARD
    return parse_card(read_card(voice_dir), path)


def parse_card(data: dict, path: Path) -> VoiceCard:
    """A raw card (as read from ``path``) -> VoiceCard, or VoiceError naming ``path`` and the field."""
    from tts.text.symbols import SymbolTable

    def fail(message: str) -> VoiceError:
        return VoiceError(f"{path}: {message}")

    symbols = data.get("symbols")
    if symbols is not None:
        try:
            SymbolTable.from_dict(symbols)
        except (ValueError, TypeError) as err:
            raise fail(f"symbols: {err}") from None
    parts = {}
    for part in PARTS:
        raw = data.get(part)
        if raw is None:
            parts[part] = None
            continue
        if not isinstance(raw, dict):
            raise fail(f"{part} must be an object, got {_shown(raw)}")
        missing = [key for key in ("audio", "config", "steps", "file") if key not in raw]
        if missing:
            raise fail(f"{part} has no {', '.join(missing)}")
        try:
            parts[part] = PartCard(
                audio=typed_config(AudioConfig, raw["audio"], f"{part}.audio"),
                config=typed_config(MODEL_CONFIGS[part], raw["config"], f"{part}.config"),
                steps=_check(int, raw["steps"], f"{part}.steps"),
                file=_check(str, raw["file"], f"{part}.file"),
                dtype=_check(str, raw.get("dtype", "float32"), f"{part}.dtype"),
                sha256=_check(Optional[str], raw.get("sha256"), f"{part}.sha256"),
            )
        except (ConfigError, TypeError, ValueError) as err:
            raise fail(str(err)) from None
        if parts[part].steps < 0:
            raise fail(f"{part}.steps must not be negative, got {parts[part].steps}")
        if Path(parts[part].file).name != parts[part].file:
            raise fail(f"{part}.file must be a file name in the voice directory, got {parts[part].file!r}")
    if parts["acoustic"] is not None and symbols is None:
        raise fail("has an acoustic part but no symbols")
    default_vocoder = data.get("default_vocoder", "wavenet")
    if default_vocoder not in VOCODER_NAMES:
        raise fail(f"default_vocoder must be one of {', '.join(VOCODER_NAMES)}, got {_shown(default_vocoder)}")
    temperature, unvoiced = data.get("wavenet_temperature", 1.0), data.get("wavenet_unvoiced_temperature")
    for key, value in (("wavenet_temperature", temperature), ("wavenet_unvoiced_temperature", unvoiced)):
        if value is None and key == "wavenet_unvoiced_temperature":
            continue  # absent: the one temperature everywhere
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TEMPERATURE:
            raise fail(f"{key} must be a number in (0, {MAX_TEMPERATURE:g}], got {_shown(value)}")
    for key in ("metrics", "provenance"):
        if not isinstance(data.get(key, {}), dict):
            raise fail(f"{key} must be an object, got {_shown(data[key])}")
    return VoiceCard(path=path, symbols=symbols, acoustic=parts["acoustic"], vocoder=parts["vocoder"],
                     default_vocoder=default_vocoder, wavenet_temperature=float(temperature),
                     wavenet_unvoiced_temperature=None if unvoiced is None else float(unvoiced),
                     metrics=data.get("metrics", {}), provenance=data.get("provenance", {}))


def typed_config(cls, data: Any, where: str):
    """A config dataclass from a plain dict, with every value checked against the field's type
    (``where`` prefixes field names in messages: "acoustic.config"). Missing fields take their
    defaults; unknown fields and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be an object, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {', '.join(unknown)}")
    values = {name: _check(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check(kind: Any, value: Any, name: str) -> Any:
    """``value`` if it is of type ``kind`` (int, float, str, bool, Optional[X], tuple[X, ...], Any);
    floats accept ints and must be finite. Raises ConfigError naming the field."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (Union, getattr(types, "UnionType", Union)):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _check(rest[0], value, name)
        raise ConfigError(f"{name}: cannot check a value of type {kind}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {_shown(value)}")
        inner = args[0] if args else Any
        return tuple(_check(inner, v, f"{name}[{i}]") for i, v in enumerate(value))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {_shown(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {_shown(value)}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {_shown(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {_shown(value)}")
        return value
    raise ConfigError(f"{name}: cannot check a value of type {kind}")
