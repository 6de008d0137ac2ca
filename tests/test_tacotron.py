"""Tacotron model and training system: shapes, masks, batch independence, inference bounds and
determinism, losses and metrics, logging, and a tiny model overfitting one utterance."""

import dataclasses
import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from tts.config import AcousticTrainConfig, AudioConfig, TacotronConfig
from tts.models.tacotron import Tacotron
from tts.train.acoustic import (
    TacotronSystem,
    alignment_coverage,
    alignment_focus,
    decoder_lengths,
    diagonal_score,
    guided_attention_loss,
)

N_SYMBOLS, N_MELS, PAD = 14, 12, 0


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine two threads
    waiting on each other made the overfit test 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
SYMBOLS = {"symbols": ["_"] + [f"s{i}" for i in range(N_SYMBOLS - 1)], "pad_id": PAD}


def tiny(**overrides) -> TacotronConfig:
    sizes = dict(embedding_dim=16, encoder_dim=16, attention_dim=8, location_filters=4, location_kernel_size=5,
                 prenet_dim=8, decoder_dim=16, postnet_dim=8, postnet_layers=3, postnet_kernel_size=3,
                 max_frames_per_symbol=2.0, max_frames_margin=3)
    sizes.update(overrides)
    return TacotronConfig(**sizes)


def make_model(config: TacotronConfig, *, stop_bias: float = None, seed: int = 0) -> Tacotron:
    torch.manual_seed(seed)
    model = Tacotron(config, n_symbols=N_SYMBOLS, n_mels=N_MELS, pad_id=PAD).eval()
    if stop_bias is not None:  # make the stop token never (-) or always (+) fire
        with torch.no_grad():
            model.decoder.stop_proj.weight.zero_()
            model.decoder.stop_proj.bias.fill_(stop_bias)
    return model


def padded_text(sentences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sentences])
    text = torch.full((len(sentences), int(lengths.max())), PAD, dtype=torch.long)
    for i, s in enumerate(sentences):
        text[i, : len(s)] = torch.tensor(s)
    return text, lengths


SENTENCES = [[3, 5, 7, 2, 9], [4, 4, 8, 1, 6, 10, 12, 2, 3], [11, 2, 6]]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_forward_shapes_with_any_frame_count(r):
    model = make_model(tiny(reduction=r)).train()
    text, text_lengths = padded_text(SENTENCES)
    T = 17  # not a multiple of 2 or 3
    mel = torch.randn(3, N_MELS, T)
    mel_lengths = torch.tensor([17, 12, 9])
    out = model(text, text_lengths, mel, mel_lengths)
    steps = math.ceil(T / r)
    assert out["mel"].shape == out["mel_post"].shape == (3, N_MELS, T)
    assert out["stop_logits"].shape == (3, T)
    assert out["alignments"].shape == (3, steps, text.shape[1])
    torch.testing.assert_close(out["alignments"].sum(-1), torch.ones(3, steps))
    assert (out["mel_post"][1, :, 12:] == 0).all() and (out["mel"][2, :, 9:] == 0).all()
    out["mel_post"].sum().backward()
    assert model.encoder.embedding.weight.grad.abs().sum() > 0


def test_padded_symbols_get_no_attention():
    model = make_model(tiny(), stop_bias=-1e4)
    text, text_lengths = padded_text(SENTENCES)
    mel = torch.randn(3, N_MELS, 10)
    out = model(text, text_lengths, mel, torch.tensor([10, 10, 10]))
    inferred = model.infer(text, text_lengths, generator=seeded())
    for alignments in (out["alignments"], inferred["alignments"]):
        for i, n in enumerate(text_lengths.tolist()):
            assert (alignments[i, :, n:] == 0).all()


def test_forward_does_not_depend_on_the_batch():
    model = make_model(tiny(prenet_dropout=0.0))  # eval mode and no prenet noise: fully deterministic
    text, text_lengths = padded_text(SENTENCES)
    mel_lengths = torch.tensor([13, 16, 7])
    mel = torch.randn(3, N_MELS, 16)
    batched = model(text, text_lengths, mel, mel_lengths)
    for i in range(3):
        n, t = int(text_lengths[i]), int(mel_lengths[i])
        single = model(text[i : i + 1, :n], text_lengths[i : i + 1], mel[i : i + 1, :, :t], mel_lengths[i : i + 1])
        for key in ("mel", "mel_post", "stop_logits"):
            torch.testing.assert_close(batched[key][i, ..., :t], single[key][0], atol=1e-5, rtol=1e-4)
        steps = math.ceil(t / 2)
        torch.testing.assert_close(batched["alignments"][i, :steps, :n], single["alignments"][0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("stop_bias", [-1e4, 1e4])
def test_batched_infer_equals_single_infer(stop_bias):
    model = make_model(tiny(), stop_bias=stop_bias)
    text, text_lengths = padded_text(SENTENCES)
    batched = model.infer(text, text_lengths, prenet_dropout=False)
    for i, sentence in enumerate(SENTENCES):
        single = model.infer(torch.tensor([sentence]), torch.tensor([len(sentence)]), prenet_dropout=False)
        t = int(single["mel_lengths"][0])
        assert int(batched["mel_lengths"][i]) == t
        assert batched["stop_reason"][i] == single["stop_reason"][0]
        torch.testing.assert_close(batched["mel_post"][i, :, :t], single["mel_post"][0], atol=1e-5, rtol=1e-4)
        steps = single["alignments"].shape[1]
        torch.testing.assert_close(batched["alignments"][i, :steps, : len(sentence)], single["alignments"][0],
                                   atol=1e-5, rtol=1e-4)
    if stop_bias > 0:
        assert batched["stop_reason"] == ["stop"] * 3 and batched["mel_lengths"].tolist() == [1, 1, 1]


def test_length_bound_is_respected():
    config = tiny(max_frames_per_symbol=2.5, max_frames_margin=3)
    model = make_model(config, stop_bias=-1e4)
    text, text_lengths = padded_text(SENTENCES)
    out = model.infer(text, text_lengths, generator=seeded())
    expected = [math.ceil(2.5 * n) + 3 for n in text_lengths.tolist()]
    assert out["mel_lengths"].tolist() == expected
    assert out["stop_reason"] == ["length_bound"] * 3
    assert out["mel_post"].shape == (3, N_MELS, max(expected))
    assert out["alignments"].shape == (3, math.ceil(max(expected) / 2), text.shape[1])
    capped = model.infer(text, text_lengths, generator=seeded(), max_frames=9)
    assert capped["mel_lengths"].tolist() == [min(e, 9) for e in expected]
    assert capped["mel_post"].shape[2] == 9


def test_frames_past_length_hold_the_pad_value():
    model = make_model(tiny(), stop_bias=-1e4)
    text, text_lengths = padded_text(SENTENCES)
    floor = math.log(1e-5)
    for pad_value in (0.0, floor):
        out = model.infer(text, text_lengths, generator=seeded(), pad_value=pad_value)
        for i, t in enumerate(out["mel_lengths"].tolist()):
            assert (out["mel_post"][i, :, t:] == pad_value).all() and (out["mel"][i, :, t:] == pad_value).all()
            assert (out["mel_post"][i, :, :t] != pad_value).any()
            assert (out["alignments"][i, math.ceil(t / 2):] == 0).all()


def test_infer_is_deterministic_given_a_seed():
    model = make_model(tiny(), stop_bias=-1e4)
    text, text_lengths = padded_text(SENTENCES)
    a = model.infer(text, text_lengths, generator=seeded(7))
    b = model.infer(text, text_lengths, generator=seeded(7))
    c = model.infer(text, text_lengths, generator=seeded(8))
    torch.testing.assert_close(a["mel_post"], b["mel_post"], rtol=0, atol=0)
    torch.testing.assert_close(a["alignments"], b["alignments"], rtol=0, atol=0)
    assert not torch.allclose(a["mel_post"], c["mel_post"])  # the prenet dropout is on at inference


def test_attention_stays_in_its_window_at_inference():
    window = 1
    model = make_model(tiny(attention_window=window, max_frames_per_symbol=4.0), stop_bias=-1e4)
    sentence = [(i % 12) + 1 for i in range(20)]
    out = model.infer(torch.tensor([sentence]), torch.tensor([20]), generator=seeded())
    alignments = out["alignments"][0]
    peak = 0
    for weights in alignments:
        allowed = torch.zeros(20, dtype=torch.bool)
        allowed[max(peak - 1, 0) : peak + window + 1] = True
        assert (weights[~allowed] == 0).all()
        peak = int(weights.argmax())


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="reduction"):
        Tacotron(tiny(reduction=0), n_symbols=N_SYMBOLS, n_mels=N_MELS)
    with pytest.raises(ValueError, match="postnet_kernel_size"):
        Tacotron(tiny(postnet_kernel_size=4), n_symbols=N_SYMBOLS, n_mels=N_MELS)
    with pytest.raises(ValueError, match="pad_id"):
        Tacotron(tiny(), n_symbols=N_SYMBOLS, n_mels=N_MELS, pad_id=N_SYMBOLS)


def diagonal(T: int, N: int) -> torch.Tensor:
    """A sharp diagonal alignment (T, N)."""
    a = torch.zeros(T, N)
    a[torch.arange(T), (torch.arange(T) * N) // T] = 1.0
    return a


def test_guided_attention_prefers_a_diagonal():
    T, N = 20, 8
    lengths_t, lengths_n = torch.tensor([T]), torch.tensor([N])
    sharp = guided_attention_loss(diagonal(T, N)[None], lengths_n, lengths_t, sigma=0.2)
    flat = guided_attention_loss(torch.full((1, T, N), 1.0 / N), lengths_n, lengths_t, sigma=0.2)
    backwards = guided_attention_loss(diagonal(T, N).flip(1)[None], lengths_n, lengths_t, sigma=0.2)
    assert sharp < 0.1 < flat < backwards
    # Padding does not count: a padded copy scores the same.
    padded = torch.zeros(1, T + 5, N + 3)
    padded[0, :T, :N] = diagonal(T, N)
    torch.testing.assert_close(guided_attention_loss(padded, lengths_n, lengths_t, sigma=0.2), sharp)


def test_alignment_metrics():
    T, N, r = 20, 8, 2
    frames = torch.tensor([2 * T])
    sharp = diagonal(T, N)[None]
    assert alignment_focus(sharp, torch.tensor([N]), frames, reduction=r) == pytest.approx(1.0)
    assert diagonal_score(sharp, torch.tensor([N]), frames, reduction=r) == pytest.approx(1.0)
    flat = torch.full((1, T, N), 1.0 / N)
    assert alignment_focus(flat, torch.tensor([N]), frames, reduction=r) == pytest.approx(1.0 / N)
    backwards = diagonal(N, N).flip(1)[None]
    assert diagonal_score(backwards, torch.tensor([N]), torch.tensor([2 * N]), reduction=r) == 0.0
    assert alignment_coverage(sharp, torch.tensor([N]), frames, reduction=r) == pytest.approx(1.0)
    stuck = torch.zeros(1, T, N)
    stuck[:, :, 0] = 1.0
    assert diagonal_score(stuck, torch.tensor([N]), frames, reduction=r) == pytest.approx(1.0)
    assert alignment_coverage(stuck, torch.tensor([N]), frames, reduction=r) == pytest.approx(1.0 / N)
    # Steps past the mel length and symbols past the text length do not count.
    assert alignment_coverage(sharp, torch.tensor([N]), torch.tensor([T]), reduction=r) == pytest.approx(0.5)
    assert decoder_lengths(torch.tensor([5, 6]), 3).tolist() == [2, 2]


def test_losses_ignore_padding():
    torch.manual_seed(0)
    system = TacotronSystem(audio=AudioConfig(n_mels=N_MELS), model=tiny(prenet_dropout=0.0),
                            train=AcousticTrainConfig(max_steps=10, batch_size=3), symbols=SYMBOLS).eval()
    text, text_lengths = padded_text(SENTENCES)
    mel_lengths = torch.tensor([13, 16, 7])
    mel = torch.randn(3, N_MELS, 16)
    batch = {"text": text, "text_lengths": text_lengths, "mel": mel, "mel_lengths": mel_lengths, "ids": ["a", "b", "c"]}
    with torch.no_grad():
        a = system.losses(batch, system(batch), step=0)
        noisy = dict(batch, mel=mel.masked_fill(torch.arange(16)[None, None] >= mel_lengths[:, None, None], 99.0))
        b = system.losses(noisy, system(noisy), step=0)
    for key in ("loss", "mel", "mel_post", "stop", "guided_attention"):
        torch.testing.assert_close(a[key], b[key])
    assert system.guided_attention_weight(system.train_config.guided_attention_decay_steps) == pytest.approx(0.5)


class Repeat(Dataset):
    """The same batch again and again."""

    def __init__(self, batch: dict, n: int):
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        return self.batch


def synthetic_utterance() -> tuple[dict, list[int]]:
    """~10 symbols, 40 frames: each symbol's segment holds its own spectral pattern."""
    ids = [4, 7, 2, 9, 5, 11, 3, 8, 6, 10]
    durations = [4, 3, 5, 4, 4, 3, 5, 4, 4, 4]
    pattern = torch.rand(N_SYMBOLS, N_MELS, generator=seeded(1)) * -8.0
    mel = torch.cat([pattern[i][:, None].expand(N_MELS, d) for i, d in zip(ids, durations)], dim=1)
    mel = mel + 0.3 * torch.linspace(0, 1, mel.shape[1])[None]
    batch = {"text": torch.tensor([ids]), "text_lengths": torch.tensor([len(ids)]), "mel": mel[None],
             "mel_lengths": torch.tensor([mel.shape[1]]), "ids": ["utt"]}
    return batch, ids


@pytest.mark.parametrize("logger", ["tensorboard", "csv"])
def test_system_trains_validates_and_saves_plain_checkpoints(tmp_path, logger):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    L.seed_everything(0, verbose=False)
    batch, _ = synthetic_utterance()
    audio = AudioConfig(n_mels=N_MELS, n_fft=256, win_length=256, hop_length=64, sample_rate=8000, f_max=4000.0)
    system = TacotronSystem(audio=audio, model=tiny(max_frames_per_symbol=5.0),
                            train=AcousticTrainConfig(max_steps=2, batch_size=1, warmup_steps=1, val_sentences=1),
                            symbols=SYMBOLS)
    with torch.no_grad():  # an untrained stop token may fire at once; Griffin-Lim needs a few frames
        system.model.decoder.stop_proj.bias.fill_(-1e4)
    loggers = {"tensorboard": TensorBoardLogger(tmp_path, name="tb", version=""),
               "csv": CSVLogger(tmp_path, name="csv", version="")}
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=loggers[logger], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, val_check_interval=2,
                        limit_val_batches=1, num_sanity_val_steps=0, log_every_n_steps=1)
    trainer.fit(system, train_dataloaders=DataLoader(Repeat(batch, 4), batch_size=None),
                val_dataloaders=DataLoader(Repeat(batch, 1), batch_size=None))
    assert {"train/loss", "val/loss", "val/alignment_focus"} <= set(trainer.logged_metrics)
    if logger == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "audio": 0}).Reload()
        tags = events.Tags()
        assert {"val/alignment/0", "val/mel/0"} <= set(tags["images"])
        assert "val/audio/0" in tags["audio"] and "val/infer_alignment_focus" in tags["scalars"]
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # no custom classes inside
    assert checkpoint["hyper_parameters"]["model"] == dataclasses.asdict(system.model_config)
    restored = TacotronSystem.load_from_checkpoint(path, map_location="cpu")
    assert restored.model_config == system.model_config and restored.audio == audio


def test_tiny_model_overfits_one_utterance():
    L.seed_everything(0, verbose=False)
    batch, ids = synthetic_utterance()
    T = int(batch["mel_lengths"][0])
    model = TacotronConfig(embedding_dim=32, encoder_dim=32, attention_dim=32, location_filters=8,
                           location_kernel_size=7, prenet_dim=32, decoder_dim=64, postnet_dim=32, reduction=2,
                           dropout=0.1, decoder_dropout=0.0)
    train = AcousticTrainConfig(max_steps=300, batch_size=1, lr=5e-3, min_lr=1e-4, warmup_steps=10,
                                decay_steps=1000, guided_attention_decay_steps=100)
    system = TacotronSystem(audio=AudioConfig(n_mels=N_MELS), model=model, train=train, symbols=SYMBOLS)

    def measure() -> tuple[float, torch.Tensor]:
        system.eval()
        torch.manual_seed(0)
        with torch.no_grad():
            out = system(batch)
            return float(system.losses(batch, out, step=0)["loss"]), out["alignments"]

    start, _ = measure()
    system.train()
    trainer = L.Trainer(max_steps=train.max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=train.grad_clip,
                        limit_val_batches=0)
    trainer.fit(system, train_dataloaders=DataLoader(Repeat(batch, train.max_steps), batch_size=None))
    end, alignments = measure()

    assert end < 0.2 * start, (start, end)
    text_lengths, mel_lengths = batch["text_lengths"], batch["mel_lengths"]
    # Measured: focus ~0.94-0.98 and fully monotonic over four seeds; an untrained model scores ~0.1.
    assert alignment_focus(alignments, text_lengths, mel_lengths, reduction=2) > 0.7
    assert diagonal_score(alignments, text_lengths, mel_lengths, reduction=2) >= 0.9
    assert alignment_coverage(alignments, text_lengths, mel_lengths, reduction=2) >= 0.8
    peaks = alignments[0].argmax(-1)
    assert peaks[0] <= 1 and peaks[-1] >= len(ids) - 2  # starts at the start and reaches the end

    # Free-running: the stop token fires near the true length, and a batch-mate does not change it.
    other = [12, 1, 3]
    text, text_lengths = padded_text([ids, other])
    batched = system.model.infer(text, text_lengths, prenet_dropout=False)
    single = system.model.infer(batch["text"], batch["text_lengths"], prenet_dropout=False)
    length = int(single["mel_lengths"][0])
    assert single["stop_reason"] == ["stop"] and 0.75 * T <= length <= 1.25 * T, single["mel_lengths"]
    assert int(batched["mel_lengths"][0]) == length and batched["stop_reason"][0] == "stop"
    torch.testing.assert_close(batched["mel_post"][0, :, :length], single["mel_post"][0], atol=1e-4, rtol=1e-4)
