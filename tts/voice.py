"""A voice on disk, and the one inference path used by the CLI, the Python API and batch synthesis.

A voice directory (a training run directory, or the default voice shipped in the package) holds:

    voice.json               the card: symbols, and per part its audio config, model config, steps
    acoustic.safetensors     Tacotron weights
    vocoder.safetensors      WaveNet weights (optional: without it, Griffin-Lim is used)

A loaded Voice speaks through its vocoders (tts.vocoders): Griffin-Lim always, the WaveNet when its
weights are loaded, chosen by name through the card's ``vocoder_for``.

Loading reads JSON and safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from tts.audio import atomic_write
from tts.card import (CARD, CARD_FORMAT, DEFAULT_VOICE, PARTS, VoiceCard, VoiceError, load_card,  # noqa: F401
                      read_card, update_card, write_card)  # (re-exported)
from tts.config import AudioConfig
from tts.vocoders import VOCODER_NAMES, GriffinLimVocoder, OnAudio, Vocoder, WaveNetVocoder

log = logging.getLogger(__name__)


def export_part(voice_dir: Path, part: str, model: torch.nn.Module, *, audio: AudioConfig, config, steps: int,
                symbols: Optional[dict] = None, dtype: torch.dtype = torch.float32) -> None:
    """Write one part's weights as safetensors and record it in the card, with the file's sha256
    (checked at load, so a damaged file is refused instead of speaking garbage)."""
    from safetensors.torch import save

    voice_dir = Path(voice_dir)
    state = {name: tensor.detach().to("cpu", dtype if tensor.is_floating_point() else tensor.dtype).contiguous()
             for name, tensor in model.state_dict().items()}
    data = save(state)
    atomic_write(voice_dir / f"{part}.safetensors", data)

    def record(card: dict) -> None:
        if symbols is not None:
            card["symbols"] = symbols
        card[part] = {"audio": asdict(audio), "config": asdict(config), "steps": int(steps),
                      "file": f"{part}.safetensors", "sha256": hashlib.sha256(data).hexdigest()}

    update_card(voice_dir, record)


def write_untrained_voice(voice_dir: Path, recipe, *, seed: int = 0) -> Path:
    """Write a voice with randomly initialised Tacotron and WaveNet built from ``recipe``
    (a tts.config.Recipe): for tests and throughput benchmarks of the synthesis path, without
    training. It does not speak: its stop token never fires, so every sentence runs to the
    length bound (acoustic.max_frames_per_symbol)."""
    from tts.models.tacotron import Tacotron
    from tts.models.wavenet import WaveNet
    from tts.text import SymbolTable

    voice_dir = Path(voice_dir)
    voice_dir.mkdir(parents=True, exist_ok=True)
    symbols = SymbolTable.default()
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
        torch.manual_seed(seed)
        acoustic = Tacotron(recipe.acoustic, n_symbols=len(symbols), n_mels=recipe.audio.n_mels,
                            pad_id=symbols.pad_id)
        vocoder = WaveNet(recipe.vocoder, n_mels=recipe.audio.n_mels, hop_length=recipe.audio.hop_length,
                          audio=recipe.audio)
    export_part(voice_dir, "acoustic", acoustic, audio=recipe.audio, config=recipe.acoustic, steps=0,
                symbols=symbols.to_dict())
    export_part(voice_dir, "vocoder", vocoder, audio=recipe.audio, config=recipe.vocoder, steps=0)
    return voice_dir


def _mismatch(a: AudioConfig, b: AudioConfig) -> list[str]:
    a, b = asdict(a), asdict(b)
    return [f"{key} ({a.get(key)} vs {b.get(key)})" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _load_weights(model: torch.nn.Module, path: Path, sha256: Optional[str]) -> None:
    """Load safetensors weights into ``model``; a missing, truncated or corrupt file, or one that
    does not fit the model, is a VoiceError naming the file."""
    from safetensors.torch import load

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VoiceError(f"{path} is missing") from None
    except OSError as err:
        raise VoiceError(f"{path}: cannot read the weights ({err.strerror})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise VoiceError(f"{path} is damaged: its sha256 differs from the one in {CARD} "
                         f"(copy the voice again, or export it again from its run)")
    try:
        state = load(data)
    except Exception as err:  # safetensors raises its own SafetensorError (no common base) for broken files
        raise VoiceError(f"{path} is damaged or not a safetensors file ({str(err).splitlines()[0]})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise VoiceError(f"{path}: weights do not fit the model in {CARD} ({str(err).splitlines()[0]})") from None


def resolve_device(device: Optional[str]) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VoiceError(f"--device {device}: no CUDA device is visible; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise VoiceError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None


class Voice:
    """A loaded voice: frontend, symbol table, Tacotron and (optionally) WaveNet.

    >>> voice = Voice.load()                      # the default voice
    >>> wav = voice.synthesize(["Hello world."])[0]
    """

    def __init__(self, *, card: VoiceCard, acoustic: torch.nn.Module, vocoder: Optional[torch.nn.Module],
                 device: torch.device, path: Path, frontend=None):
        from tts.text import Frontend, SymbolTable

        self.card, self.acoustic, self.vocoder, self.device, self.path = card, acoustic, vocoder, device, path
        self.audio = card.acoustic.audio
        # by name; ``vocoder`` (the WaveNet module, or None) stays reachable for training and tests
        self.vocoders: dict[str, Vocoder] = {"griffinlim": GriffinLimVocoder(self.audio, device)}
        if vocoder is not None:
            self.vocoders["wavenet"] = WaveNetVocoder(vocoder, self.audio, device,
                                                      temperature=card.wavenet_temperature,
                                                      unvoiced_temperature=card.wavenet_unvoiced_temperature)
        self.symbols = SymbolTable.from_dict(card.symbols)
        self.frontend = frontend or Frontend()

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @classmethod
    def load(cls, path: Union[str, Path, None] = None, *, device: Optional[str] = None, vocoder: bool = True,
             frontend=None) -> "Voice":
        """Load a voice directory (None: the default voice shipped with the package). ``frontend``
        reuses an already loaded tts.text.Frontend. Everything is checked here: the card's fields
        and types, that its parts agree, and the weights files (VoiceError naming the file)."""
        from tts.models.tacotron import Tacotron
        from tts.models.wavenet import WaveNet

        if path is None:
            path = DEFAULT_VOICE
            if not (path / CARD).is_file():
                raise VoiceError("no default voice is installed; train one (tts train recipe=...) and pass --voice RUN_DIR")
        path = Path(path)
        if not path.is_dir():
            raise VoiceError(f"voice directory {path} does not exist")
        card = load_card(path)
        if card.acoustic is None:
            raise VoiceError(f"{path} has no trained acoustic model yet (its acoustic stage has not finished)")
        torch_device = resolve_device(device)
        audio = card.acoustic.audio
        use_vocoder = vocoder and card.vocoder is not None
        if use_vocoder:
            differ = _mismatch(audio, card.vocoder.audio)
            if differ:
                raise VoiceError(f"{path}: the acoustic model and the vocoder were trained on different audio "
                                 f"settings: {', '.join(differ)}")
        try:
            acoustic = Tacotron(card.acoustic.config, n_symbols=len(card.symbols["symbols"]), n_mels=audio.n_mels,
                                pad_id=card.symbols["pad_id"])
            wavenet = (WaveNet(card.vocoder.config, n_mels=audio.n_mels, hop_length=audio.hop_length, audio=audio)
                       if use_vocoder else None)
        except (ValueError, RuntimeError) as err:  # sizes that build no model (the card's types are checked)
            raise VoiceError(f"{card.path}: invalid model configuration ({str(err).splitlines()[0]})") from None
        _load_weights(acoustic, card.weights("acoustic"), card.acoustic.sha256)
        if wavenet is not None:
            _load_weights(wavenet, card.weights("vocoder"), card.vocoder.sha256)
            wavenet = wavenet.to(torch_device).eval()
        return cls(card=card, acoustic=acoustic.to(torch_device).eval(), vocoder=wavenet, device=torch_device, path=path,
                   frontend=frontend)

    def encode(self, text: str) -> list[int]:
        """Text -> this voice's symbol ids, ending with end-of-sequence; raises TextError when
        nothing in the text can be spoken."""
        return self.frontend.text_to_ids(text, self.symbols)

    def mels(self, texts: Sequence[str], *, seed: Optional[int] = None) -> list[dict]:
        """Texts -> per text {"mel": (n_mels, T) tensor, "alignment": (T_dec, L), "stop_reason": str}."""
        return self.mels_from_ids([self.encode(text) for text in texts], seed=seed)

    @torch.no_grad()
    def mels_from_ids(self, encoded: Sequence[Sequence[int]], *, seed: Optional[int] = None) -> list[dict]:
        """Symbol id lists (as from ``encode``) run as one padded batch (B, max L_i) through Tacotron ->
        per item {"mel": (n_mels, T_i) on self.device, "alignment": (ceil(T_i / r), L_i) on the CPU,
        "stop_reason": "stop" or "length_bound"}. ``seed`` drives the prenet dropout of this batch."""
        lengths = torch.tensor([len(ids) for ids in encoded])
        batch = torch.full((len(encoded), int(lengths.max())), self.symbols.pad_id, dtype=torch.long)
        for i, ids in enumerate(encoded):
            batch[i, : len(ids)] = torch.tensor(ids)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(0 if seed is None else seed)
        out = self.acoustic.infer(batch.to(self.device), lengths.to(self.device), generator=generator)
        r = self.acoustic.config.reduction
        results = []
        for i in range(len(encoded)):
            frames = int(out["mel_lengths"][i])
            results.append({
                "mel": out["mel_post"][i, :, :frames].float(),
                "alignment": out["alignments"][i, : -(-frames // r), : int(lengths[i])].float().cpu(),
                "stop_reason": out["stop_reason"][i],
            })
        return results

    def vocoder_named(self, choice: str = "auto") -> Vocoder:
        """The vocoder ``choice`` ("auto" or a name in tts.vocoders.VOCODER_NAMES) means for this
        voice (``VoiceCard.vocoder_for``); VoiceError when it names one the voice has not loaded."""
        name = self.card.vocoder_for(choice, self.vocoders)
        if name not in self.vocoders:
            if name not in VOCODER_NAMES:
                raise VoiceError(f"unknown vocoder {name!r}; use auto, {', '.join(VOCODER_NAMES)}")
            raise VoiceError(f"{self.path} has no trained vocoder ({name}); use --vocoder griffinlim")
        return self.vocoders[name]

    @torch.no_grad()
    def vocode(self, mels: Sequence[torch.Tensor], *, vocoder: str = "auto", seed: Optional[int] = None,
               progress: bool = False, on_audio: Optional[OnAudio] = None) -> list[np.ndarray]:
        """Mels (n_mels, T_i) -> waveforms (T_i * hop,) float32 in [-1, 1], through ``vocoder_named(vocoder)``
        (auto: the card's default_vocoder, which an under-trained WaveNet may not be). ``on_audio(i, piece)``
        streams each waveform's pieces as they are made (tts.vocoders)."""
        return self.vocoder_named(vocoder).vocode(mels, seed=seed, progress=progress, on_audio=on_audio)

    def synthesize(self, texts: Sequence[str], *, vocoder: str = "auto", seed: Optional[int] = None,
                   progress: bool = False) -> list[np.ndarray]:
        """Texts -> waveforms at self.sample_rate, float32 in [-1, 1]."""
        mels = [m["mel"] for m in self.mels(texts, seed=seed)]
        return self.vocode(mels, vocoder=vocoder, seed=seed, progress=progress)
