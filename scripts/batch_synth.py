"""`tts batch` as a script, for launchers that want a file to run: every process reads RANK,
WORLD_SIZE and LOCAL_RANK and synthesizes its share of the items on cuda:LOCAL_RANK.

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
        scripts/batch_synth.py lines.txt -o out/ --voice runs/lj --batch-size 32

Arguments are those of `tts batch` (see tts batch --help). On one machine,
`tts batch INPUT -o OUTDIR --devices N` does the same without a launcher.
"""

import sys

from tts.cli import main

if __name__ == "__main__":
    sys.exit(main(["batch", *sys.argv[1:]]))
