"""Write a copy of a voice whose WaveNet is wider but computes exactly what it did (tts.models.widen).

    python3 scripts/widen_vocoder.py tts/voices/default --out ~/tts-work/wide64 \\
        residual_channels=64 gate_channels=128 skip_channels=64
    tts train recipe=teacher stage=vocoder init_from=~/tts-work/wide64 \\
        vocoder.residual_channels=64 vocoder.gate_channels=128 vocoder.skip_channels=64 ...

Training then goes on from the narrow model's quality with the extra width to learn into. The new
voice keeps the old one's acoustic model, card and step count; its vocoder is stored in float32.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path


from tts.card import load_card
from tts.errors import TTSError
from tts.models.wavenet import WaveNet
from tts.models.widen import widen
from tts.voice import export_part

WIDTHS = ("residual_channels", "gate_channels", "skip_channels")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("voice", type=Path, help="a voice directory with a WaveNet")
    parser.add_argument("--out", type=Path, required=True, help="the new voice directory (must not exist)")
    parser.add_argument("widths", nargs="+", metavar="NAME=CHANNELS", help=f"any of {', '.join(WIDTHS)}")
    args = parser.parse_args(argv)
    try:
        widths = {}
        for item in args.widths:
            name, _, value = item.partition("=")
            if name not in WIDTHS or not value.isdigit():
                raise TTSError(f"expected NAME=CHANNELS with NAME one of {', '.join(WIDTHS)}, got {item!r}")
            widths[name] = int(value)
        if args.out.exists():
            raise TTSError(f"{args.out} exists; name a new directory")
        card = load_card(args.voice)
        if card.vocoder is None:
            raise TTSError(f"{args.voice} has no WaveNet to widen")
        part = card.vocoder
        narrow = WaveNet(part.config, n_mels=part.audio.n_mels, hop_length=part.audio.hop_length, audio=part.audio)
        from safetensors.torch import load_file

        narrow.load_state_dict({k: v.float() for k, v in load_file(str(card.weights("vocoder"))).items()})
        config = dataclasses.replace(part.config, **widths)
        wide = WaveNet(config, n_mels=part.audio.n_mels, hop_length=part.audio.hop_length, audio=part.audio)
        try:
            widen(narrow, wide)
        except ValueError as err:
            raise TTSError(str(err)) from None
        shutil.copytree(args.voice, args.out)
        (args.out / "vocoder.safetensors").unlink()
        export_part(args.out, "vocoder", wide, audio=part.audio, config=config, steps=part.steps)
    except TTSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(json.dumps({"voice": str(args.out), "widths": {k: getattr(config, k) for k in WIDTHS},
                      "weights_before": count(narrow), "weights_after": count(wide), "steps": part.steps}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
