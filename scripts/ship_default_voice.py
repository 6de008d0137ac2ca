"""Copy a trained run directory into the package as the default voice (tts/voices/default/).

    python3 scripts/ship_default_voice.py runs/teacher --corpus data/teacher

Weights are stored as fp16 safetensors (half the size; they load into fp32 models), and the card
(voice.json) gains what a user of the voice needs to know: where its training data came from, under
which licences, the recipe it was trained with and on what machine. The corpus's LICENSES.txt is
copied beside it, since the voice is a work derived from the festival voice's audio.
scripts/eval_default_voice.py adds the measured metrics afterwards. Last line of output: JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save

from tts.audio import atomic_write
from tts.card import MAX_TEMPERATURE
from tts.voice import DEFAULT_VOICE, load_card, read_card, write_card

SIZE_BUDGET = 25_000_000  # bytes, the whole voice directory


def half_weights(path: Path) -> bytes:
    """A safetensors file with its floating-point tensors in fp16 (half the size; they load into
    fp32 models)."""
    state = load_file(str(path))
    return save({name: t.half() if t.is_floating_point() else t for name, t in state.items()})


def ship(run_dir: Path, corpus: Path, out: Path, trained_on: str, wavenet_temperature: Optional[float] = None,
         wavenet_unvoiced_temperature: Optional[float] = None) -> dict:
    load_card(run_dir)  # every field checked before anything is written
    card = read_card(run_dir)
    missing = [part for part in ("acoustic", "vocoder") if part not in card]
    if missing:
        raise SystemExit(f"{run_dir}: no {' or '.join(missing)} exported yet; finish that stage first")
    out.mkdir(parents=True, exist_ok=True)
    for part in ("acoustic", "vocoder"):
        data = half_weights(run_dir / card[part]["file"])
        atomic_write(out / f"{part}.safetensors", data)
        card[part]["dtype"] = "float16"
        card[part]["sha256"] = hashlib.sha256(data).hexdigest()  # checked when the voice loads
    corpus_card = json.loads((corpus / "corpus.json").read_text(encoding="utf-8"))
    rows = (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()
    card["provenance"] = {
        "corpus": {**corpus_card, "items": len(rows),
                   "text": "example sentences of WordNet 3.0 (Debian wordnet-base)",
                   "speech": "Festival with festvox-us-slt-hts (CMU ARCTIC speaker SLT, US English female)",
                   "made_by": "scripts/make_teacher_corpus.py"},
        "licences": "LICENSES.txt (EST and X11-style licences of the festival voice and lexicons, WordNet 3.0 licence)",
        "recipe": OmegaConf.to_container(OmegaConf.load(run_dir / "recipe.yaml")),
        "trained_on": trained_on,
    }
    if wavenet_temperature is not None:
        card["wavenet_temperature"] = wavenet_temperature
    if wavenet_unvoiced_temperature is not None:
        card["wavenet_unvoiced_temperature"] = wavenet_unvoiced_temperature
    shutil.copyfile(corpus / "LICENSES.txt", out / "LICENSES.txt")
    write_card(out, card)
    load_card(out)  # what was written loads
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    if size > SIZE_BUDGET:
        raise SystemExit(f"{out} holds {size / 1e6:.1f} MB, over the {SIZE_BUDGET / 1e6:.0f} MB budget")
    return {"out": str(out), "bytes": size, "acoustic_steps": card["acoustic"]["steps"],
            "vocoder_steps": card["vocoder"]["steps"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a training run directory with both stages exported")
    parser.add_argument("--corpus", type=Path, default=Path("data/teacher"), help="the corpus it was trained on")
    parser.add_argument("--out", type=Path, default=DEFAULT_VOICE, help=f"default: {DEFAULT_VOICE}")
    parser.add_argument("--trained-on", default="CPU: 2-core AMD EPYC VM, one thread per stage",
                        help="the machine, for the card")
    parser.add_argument("--wavenet-temperature", type=float, default=None, metavar="T",
                        help="the WaveNet's sampling temperature for the card (default: the run's, else 1.0), "
                             "chosen on the corpus's dev.txt (scripts/eval_default_voice.py --listing dev.txt)")
    parser.add_argument("--wavenet-unvoiced-temperature", type=float, default=None, metavar="T",
                        help="the WaveNet's temperature in unvoiced frames (tts.vocoders.voicing_temperatures), "
                             "chosen on dev.txt the same way (default: the run's, else --wavenet-temperature's)")
    args = parser.parse_args()
    for flag, value in (("--wavenet-temperature", args.wavenet_temperature),
                        ("--wavenet-unvoiced-temperature", args.wavenet_unvoiced_temperature)):
        if value is not None and not 0 < value <= MAX_TEMPERATURE:
            parser.error(f"{flag} must be in (0, {MAX_TEMPERATURE:g}], got {value}")
    torch.set_num_threads(1)
    print(json.dumps(ship(args.run_dir, args.corpus, args.out, args.trained_on, args.wavenet_temperature,
                          args.wavenet_unvoiced_temperature)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
