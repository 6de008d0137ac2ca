"""WaveNet vocoder: incremental samplers against the teacher-forced forward, output distributions,
generation contracts, and a tiny model overfitting a periodic wave through the Lightning system."""

import math
import os

import numpy as np
import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader, Dataset

from tts.audio import MelSpectrogram
from tts.config import AudioConfig, VocoderTrainConfig, WaveNetConfig
from tts.models.sampling import stream_keys, uniforms
from tts.models.wavenet import TorchSampler, WaveNet, mol_loss, mol_sample, mulaw_decode, mulaw_encode
from tts.models.wavenet_fast import FastSampler

N_MELS, HOP = 6, 8


def tiny(output="mulaw", kernel_size=2, seed=0, **overrides) -> WaveNet:
    """A random tiny WaveNet with weights large enough that every path matters to the output."""
    config = WaveNetConfig(layers=8, stacks=2, kernel_size=kernel_size, residual_channels=8, gate_channels=16,
                           skip_channels=8, upsample_scales=(2, 4), output=output, mixtures=3, **overrides)
    torch.manual_seed(seed)
    model = WaveNet(config, n_mels=N_MELS, hop_length=HOP).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def fed_back(model: WaveNet, audio: torch.Tensor) -> torch.Tensor:
    """The value fed back after each step when teacher forcing: mu-law classes or samples, (B, T)."""
    return mulaw_encode(audio).float() if model.config.output == "mulaw" else audio


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    frames = 10
    mel = torch.randn(2, N_MELS, frames, generator=g) - 3.0
    audio = torch.rand(2, frames * HOP, generator=g) * 1.8 - 0.9
    return audio, mel


@pytest.mark.parametrize("output,kernel_size", [("mulaw", 2), ("mol", 2), ("mulaw", 3)])
def test_incremental_matches_teacher_forced_torch(batch, output, kernel_size):
    audio, mel = batch
    model = tiny(output, kernel_size)
    assert audio.shape[1] > model.receptive_field  # the queues wrap around and every tap is exercised
    with torch.no_grad():
        expected = model(audio, mel)  # (B, out, T)
    sampler = TorchSampler(model, mel, torch.tensor([mel.shape[2]] * 2), forced=fed_back(model, audio), record=True,
                           chunk_frames=3)  # several chunks, so the chunk boundaries are crossed too
    with torch.no_grad():
        sampler.run()
    assert expected.std() > 0.3
    assert_close(sampler.logits.transpose(1, 2), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("output,kernel_size", [("mulaw", 2), ("mol", 2), ("mulaw", 3)])
def test_incremental_matches_teacher_forced_fast(batch, output, kernel_size):
    audio, mel = batch
    model = tiny(output, kernel_size)
    with torch.no_grad():
        expected = model(audio, mel)
    for threads in (1, 2):  # one group of two utterances (BLAS path), or one utterance per group
        sampler = FastSampler(model, mel, torch.tensor([mel.shape[2]] * 2), forced=fed_back(model, audio), record=True,
                              threads=threads, chunk_frames=3)  # the state carried across chunk boundaries
        sampler.run()
        assert_close(sampler.logits.transpose(1, 2), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("output", ["mulaw", "mol"])
def test_fast_and_torch_backends_draw_the_same_samples(batch, output):
    _, mel = batch
    model = tiny(output)
    lengths = torch.tensor([10, 7])
    fast = model.generate(mel, lengths, seed=5, backend="fast")
    slow = model.generate(mel, lengths, seed=5, backend="torch")
    assert fast.abs().max() > 0.05
    assert_close(fast, slow, atol=1e-4, rtol=0)


@pytest.mark.parametrize("output", ["mulaw", "mol"])
def test_a_frames_temperature_holds_for_its_samples_on_every_backend(batch, output):
    """temperature (B, F): each frame's samples are drawn at its own temperature, the same on both
    CPU backends; the samples before the first changed frame are those of the one temperature."""
    _, mel = batch
    model = tiny(output)
    lengths = torch.tensor([10, 7])
    temps = torch.ones(2, 10)
    temps[:, 6:] = 2.5
    fast = model.generate(mel, lengths, seed=5, backend="fast", temperature=temps)
    assert_close(fast, model.generate(mel, lengths, seed=5, backend="torch", temperature=temps), atol=1e-4, rtol=0)
    one = model.generate(mel, lengths, seed=5, backend="fast", temperature=1.0)
    assert torch.equal(fast[:, : 6 * HOP], one[:, : 6 * HOP])
    assert (fast[:, 6 * HOP:] - one[:, 6 * HOP:]).abs().max() > 0.01
    assert torch.equal(model.generate(mel, lengths, seed=5, backend="fast", temperature=torch.ones(2, 10)), one)


@pytest.mark.parametrize("temperature, message", [(0.0, "positive"), (-1.0, "positive"),
                                                  (torch.ones(2, 9), r"\(2, 10\) per frame"),
                                                  (torch.full((2, 10), float("nan")), "positive and finite")])
def test_a_bad_temperature_is_named(batch, temperature, message):
    _, mel = batch
    with pytest.raises(ValueError, match=message):
        tiny().generate(mel, seed=5, temperature=temperature)


@pytest.mark.parametrize("backend", ["fast", "torch"])
def test_generate_shape_lengths_and_seed(batch, backend):
    _, mel = batch
    mel = torch.cat([mel, mel[:1]])
    model = tiny()
    lengths = torch.tensor([10, 4, 0])
    wav = model.generate(mel, lengths, seed=3, backend=backend, temperature=0.8)
    assert wav.shape == (3, 10 * HOP) and wav.dtype == torch.float32
    assert wav[0].abs().sum() > 0 and wav[1, : 4 * HOP].abs().sum() > 0
    assert torch.all(wav[1, 4 * HOP:] == 0) and torch.all(wav[2] == 0)
    assert torch.equal(wav, model.generate(mel, lengths, seed=3, backend=backend, temperature=0.8))
    assert not torch.equal(wav, model.generate(mel, lengths, seed=4, backend=backend, temperature=0.8))
    assert wav.abs().max() <= 1.0


@pytest.mark.parametrize("backend", ["fast", "torch"])
def test_samplers_are_chunk_invariant_and_zero_past_each_length(batch, backend):
    """The shared skeleton (tts.models.sampling.Sampler): chunks of any size give the same samples
    (the draws are counter-based and the state carries over), and run() zeroes past each length.
    Not bit for bit: the conditioning is projected per chunk, and a product of another shape may
    round its last bit differently."""
    _, mel = batch
    model = tiny("mol")
    lengths = torch.tensor([10, 7])
    cls = {"fast": FastSampler, "torch": TorchSampler}[backend]
    runs = [cls(model, mel, lengths, seed=2, chunk_frames=frames).run() for frames in (1, 3, 16)]
    assert runs[0].abs().max() > 0.05 and torch.all(runs[0][1, 7 * HOP:] == 0)
    for other in runs[1:]:
        assert_close(other, runs[0], atol=1e-5, rtol=0)


def test_packed_weights_reproduce_the_modules(batch):
    """The view both kernels read (tts.models.sampling.pack_weights): a layer's dilated conv, its
    residual and skip outputs, and the head, computed from the packed layouts."""
    from tts.models.sampling import pack_weights

    model = tiny(kernel_size=3)
    w = pack_weights(model)
    block, layer = model.blocks[3], 3
    d, K = block.conv.dilation[0], 3
    x = torch.randn(2, 8, 20)
    with torch.no_grad():
        conv = block.conv(x)[:, :, -1]  # output at t = 19
        taps = sum(x[:, :, 19 - (K - 1 - k) * d] @ w.taps[layer, k] for k in range(K)) + w.gate_bias[layer]
        assert_close(taps, conv, atol=1e-5, rtol=1e-5)
        h = torch.randn(2, 8)
        assert_close(h @ w.out[layer] + w.out_bias[layer], block.out(h[:, :, None])[:, :, 0], atol=1e-5, rtol=1e-5)
        skips = torch.randn(2, 8)
        head = model.head(skips[:, :, None] * model.skip_scale)[:, :, 0]
        packed = torch.relu(torch.relu(skips * w.skip_scale) @ w.head1 + w.head1_bias) @ w.head2 + w.head2_bias
        assert_close(packed, head, atol=1e-5, rtol=1e-5)
    assert w.dilations == tuple(model.dilations) and w.embed.shape == (256, 8) and w.input_weight is None
    assert torch.equal(w.decode, mulaw_decode(torch.arange(256)))


def test_kernel_modules_do_not_import_the_model_module():
    """WaveNet.generate imports a backend lazily; the backends import only tts.models.sampling."""
    import subprocess
    import sys

    code = ("import sys; import tts.models.wavenet_fast; "
            "import importlib.util as u; u.find_spec('triton') and __import__('tts.models.wavenet_triton'); "
            "print('tts.models.wavenet' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_upsample_scales_must_multiply_to_hop_length():
    with pytest.raises(ValueError, match=r"prod\(\[4, 4\]\) = 16, hop_length = 256"):
        WaveNet(WaveNetConfig(upsample_scales=(4, 4)), n_mels=80, hop_length=256)


def test_receptive_field_and_upsampler_phase_weights():
    model = WaveNet(WaveNetConfig(), n_mels=80, hop_length=256)
    assert model.receptive_field == 2 * (2 ** 10 - 1) + 1
    # At initialisation the upsampler interpolates linearly: each sample's weights sum to one.
    weights = model.upsampler.phase_weights()
    assert weights.shape == (256, 5)
    assert_close(weights.sum(dim=1), torch.ones(256))
    mel = torch.randn(1, 80, 7)
    up = model.upsampler(mel)
    assert up.shape == (1, 80, 7 * 256)
    # The samplers' per-frame mixing reproduces the upsampler's output exactly.
    padded = torch.nn.functional.pad(model.upsampler.frame_features(mel), (2, 2), mode="replicate")
    mixed = torch.stack([padded[0, :, f: f + 5] @ weights.T for f in range(7)], dim=1).reshape(80, -1)
    assert_close(mixed, up[0], atol=1e-5, rtol=1e-5)


def test_mulaw_round_trip():
    classes = torch.arange(256)
    assert torch.equal(mulaw_encode(mulaw_decode(classes)), classes)
    x = torch.linspace(-1, 1, 2001)
    y = mulaw_decode(mulaw_encode(x))
    # Mu-law steps grow with amplitude: ~1e-4 near zero, ~0.03 near full scale.
    assert (y - x).abs().max() < 0.04
    assert (y - x)[x.abs() < 0.01].abs().max() < 5e-4
    assert mulaw_encode(torch.tensor(0.0)) == 128


def test_mol_loss_finite_and_sampling_in_range():
    torch.manual_seed(0)
    M = 4
    params = torch.randn(3, 3 * M, 50, requires_grad=True)
    target = torch.cat([torch.tensor([-1.0, 1.0, 0.0]), torch.rand(147) * 2 - 1]).view(3, 50)
    loss = mol_loss(params, target, mixtures=M)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(params.grad).all()
    # A sharp component on the target is far likelier than a broad one beside it.
    sharp = torch.zeros(1, 3 * M, 1)
    sharp[0, 0] = 20.0  # all the weight on component 0
    sharp[0, M] = 0.3
    sharp[0, 2 * M:] = -9.0
    broad = sharp.clone()
    broad[0, M] = -0.3
    broad[0, 2 * M:] = -1.0
    y = torch.tensor([[0.3]])
    assert mol_loss(sharp, y, mixtures=M) < mol_loss(broad, y, mixtures=M) - 5
    draws = torch.from_numpy(uniforms(stream_keys(0, 1000), 0, 1)[:, 0]).float()
    params = torch.randn(1000, 3 * M) * 2
    x = mol_sample(params, draws, mixtures=M)
    assert x.shape == (1000,) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.3
    x = mol_sample(sharp[:, :, 0].expand(1000, -1), draws, mixtures=M)
    assert (x - 0.3).abs().max() < 0.01


def test_random_draws_are_in_the_open_interval_and_chunk_invariant():
    keys = stream_keys(7, 3)
    whole = uniforms(keys, 0, 100)
    assert_close(np.concatenate([uniforms(keys, 0, 40), uniforms(keys, 40, 60)], axis=1), whole)
    assert whole.min() > 0 and whole.max() < 1 and abs(whole.mean() - 0.5) < 0.05


# --- overfitting a periodic wave through the real training system ---------------------------

AUDIO = AudioConfig(sample_rate=8000, n_fft=256, hop_length=32, win_length=256, n_mels=20, f_min=0.0, f_max=4000.0)
PERIOD = 32  # samples: 250 Hz, and its second harmonic at 500 Hz


def periodic_wave(start: int, n: int) -> torch.Tensor:
    t = torch.arange(start, start + n, dtype=torch.float64) * 2 * math.pi / PERIOD
    return (0.45 * torch.sin(t) + 0.3 * torch.sin(2 * t + 1.0)).float()


class PeriodicSegments(Dataset):
    """Segments of the wave at random phases with their mels, as tts.data.SegmentDataset serves them."""

    def __init__(self, frames: int, n: int = 10 ** 6):
        self.frames, self.n, self.mel = frames, n, MelSpectrogram(AUDIO)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        audio = periodic_wave(index % PERIOD, self.frames * AUDIO.hop_length)
        return {"audio": audio, "mel": self.mel(audio)[:, : self.frames]}


def spectral_distance(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean |dB| difference of time-averaged magnitude spectra over the bins where either is within
    40 dB of the reference's peak (quieter bins count as that floor): 0 for the same sound."""
    def db(wav):
        mag = torch.stft(wav, 256, 64, window=torch.hann_window(256), return_complex=True).abs()[:, 2:-2]
        return 20 * torch.log10(mag.mean(dim=1) + 1e-9)

    a, b = db(x), db(reference)
    floor = b.max() - 40
    keep = (a > floor) | (b > floor)
    return float((a.clamp(min=floor) - b.clamp(min=floor))[keep].abs().mean())


def test_overfit_periodic_wave(tmp_path):
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    from tts.train.vocoder import WaveNetSystem

    steps = 400
    model = WaveNetConfig(layers=6, stacks=1, residual_channels=16, gate_channels=32, skip_channels=16,
                          upsample_scales=(4, 8))
    train = VocoderTrainConfig(max_steps=steps, batch_size=8, segment_frames=16, lr=5e-3, min_lr=5e-4,
                               warmup_steps=10, decay_steps=steps,
                               ema_decay=None)  # the raw weights are judged: a 0.999 average of 400 steps lags them
    torch.manual_seed(0)
    system = WaveNetSystem(audio=AUDIO, model=model, train=train)
    assert system.model.receptive_field > PERIOD
    frames = 64
    target = periodic_wave(0, frames * AUDIO.hop_length)
    mel = MelSpectrogram(AUDIO)(target)[None, :, :frames]
    untrained = spectral_distance(system.model.generate(mel, seed=0)[0, 256:], target[256:])

    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, gradient_clip_val=train.grad_clip,
                        logger=TensorBoardLogger(save_dir=str(tmp_path), name="logs", version=""),
                        val_check_interval=steps, check_val_every_n_epoch=None, limit_val_batches=1,
                        num_sanity_val_steps=0, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(system, DataLoader(PeriodicSegments(train.segment_frames), batch_size=train.batch_size),
                DataLoader(PeriodicSegments(train.segment_frames, n=8), batch_size=8))
    assert trainer.callback_metrics["train/loss"] < 0.1  # nats per sample, from ~5.5 (uniform over 256)
    assert trainer.callback_metrics["val/loss"] < 0.1
    # The validation audio reached TensorBoard (scalar logging alone also writes an event file).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "logs"), size_guidance={"audio": 0}).Reload()
    assert {"val/generated", "val/target"} <= set(events.Tags()["audio"])
    generated = events.Audio("val/generated")[-1]
    assert generated.sample_rate == AUDIO.sample_rate and generated.length_frames > 0

    # Checkpoints hold plain data only: they load with weights_only=True.
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    hparams = torch.load(tmp_path / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["model"]["layers"] == 6 and hparams["audio"]["hop_length"] == 32

    # Free-running generation from silence reproduces the wave's spectrum (measured: ~0-4 dB at
    # temperature 1 depending on the seed, ~0 dB at 0.7; untrained ~19 dB, silence ~34 dB).
    system.model.eval()
    for seed, temperature in ((0, 1.0), (1, 1.0), (0, 0.7)):
        wav = system.model.generate(mel, seed=seed, temperature=temperature)[0]
        distance = spectral_distance(wav[256:], target[256:])
        assert distance < 8.0, (seed, temperature, distance, untrained)
    assert untrained > 12.0


def test_fast_sampler_leaves_torch_thread_count_alone(batch):
    # Numba's OpenMP layer resets the process's OpenMP thread count; a training process started with
    # one thread validates with this sampler and must keep one.
    _, mel = batch
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        tiny().generate(mel, seed=0, backend="fast")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_a_fresh_process_keeps_one_torch_thread_after_the_fast_sampler():
    # The first Numba call of a process starts its pool (and resets OpenMP's thread count): in a
    # training process that is the first validation, after which torch ran every step on two threads.
    import subprocess
    import sys

    code = """
import torch
from tts.config import WaveNetConfig
from tts.models.wavenet import WaveNet
config = WaveNetConfig(layers=4, stacks=1, residual_channels=8, gate_channels=16, skip_channels=8, upsample_scales=(2, 4))
WaveNet(config, n_mels=6, hop_length=8).eval().generate(torch.randn(2, 6, 5), seed=0, backend="fast")
print(torch.get_num_threads())
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split()[-1] == "1"
