#!/usr/bin/env bash
# One call of the lent GPU machine (docs/training.md, "On a lent GPU"): install the carried wheels,
# then scripts/device_train.py renders the teacher corpus and trains both stages of the default
# voice from the shipped weights until the deadline. Carry .whl, .festival and .pack (made here:
# the wheels the machine lacks, scripts/pack_festival.sh's bundle, the corpus's metadata.csv).
#   bash scripts/device_train.sh smoke OUT     # 100 rows, about 2 minutes: does everything run there?
#   bash scripts/device_train.sh full OUT SECONDS
#   STAGES=acoustic bash scripts/device_train.sh full OUT SECONDS   # one stage gets the whole GPU
#   STAGES=vocoder GTA=--gta bash scripts/device_train.sh full OUT SECONDS   # the vocoder on the shipped
#                                                     # Tacotron's ground-truth-aligned mels
set -uo pipefail
mode=${1:?usage: device_train.sh smoke|full OUT [SECONDS]}
out=${2:?usage: device_train.sh smoke|full OUT [SECONDS]}
seconds=${3:-110}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, torch.cuda.get_device_name())"
rows=.pack/rows work=/tmp/tts-device
if [ "$mode" = smoke ]; then  # its own work directory: a full run on the still-warm machine starts clean
    mkdir -p /tmp/rows && head -100 .pack/rows/metadata.csv > /tmp/rows/metadata.csv && rows=/tmp/rows
    work=/tmp/tts-device-smoke
fi
# GPU tests and the sampler benchmark while the corpus renders on the CPUs (the GPU is idle then)
if [ "$mode" = full ]; then
    (timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_wavenet_triton.py > "$out/gpu_tests.log" 2>&1
     timeout 60 python3 scripts/bench_wavenet.py --device cuda --batch 8 --seconds 2 --excitation lpc \
         --no-peer > "$out/bench_wavenet_cuda.log" 2>&1) &
fi
python3 scripts/device_train.py --corpus-rows "$rows" --work "$work" --festival .festival/festival.tar.xz --out "$out" \
    --deadline-s "$seconds" --stages ${STAGES:-acoustic vocoder} ${GTA:-} \
    --acoustic acoustic_train.batch_size=128 trainer.val_every_steps=250 \
    --vocoder vocoder_train.batch_size=32 vocoder_train.segment_frames=32 trainer.val_every_steps=1000 \
    -- init_from=tts/voices/default trainer.accelerator=gpu trainer.devices=1 data.num_workers=6 \
    trainer.checkpoint_every_steps=500
status=$?
wait
exit $status
