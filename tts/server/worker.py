"""The one thread that owns the models: requests queue here, and sentences of concurrent
requests are batched together through Tacotron and the vocoder (tts.synth.render).

Torch's thread settings and the Numba WaveNet kernel's threads are process-wide, so no model call
is ever made from a request thread. A request (a Job) is planned here (split and encoded with the
voice's frontend), then its chunks join batches in arrival order: each job contributes 1 chunk to
its first batch, 2 to its second, 4 to its third and so on (up to the batch size), so its first
audio comes after one sentence while a long text still reaches full batches. Jobs share a batch
only when they share voice, vocoder and seed (one seed drives a batch's draws); speeds may differ.

Results go back to the job's asyncio queue through ``loop.call_soon_threadsafe``, in order: one
("planned", sentences) or ("error", exception), then ("audio", float32 samples) per piece
(silences included), then ("done", seconds). A cancelled job (client gone) or one past its deadline
is dropped before its next batch.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
import time
from typing import Optional

import numpy as np

from tts.errors import TTSError
from tts.server.settings import ServerSettings
from tts.synth import Chunk, SynthesisSettings, render, split_text

log = logging.getLogger(__name__)


class ServerBusy(TTSError):
    """The queue is full; the client should retry after a moment (503 with Retry-After)."""


class RequestTimeout(TTSError):
    """A request ran past the server's time limit."""


class Job:
    """One request: its text and settings, and where its audio goes."""

    def __init__(self, *, voice: str, text: str, settings: SynthesisSettings, deadline: float,
                 loop: asyncio.AbstractEventLoop):
        self.voice, self.text, self.settings, self.deadline, self.loop = voice, text, settings, deadline, loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.chunks: list[Chunk] = []
        self.next = 0  # the first chunk not yet given to a batch
        self.batches = 0
        self.samples = 0
        self.cancelled = False
        self.arrived = time.monotonic()

    @property
    def key(self) -> tuple:
        return self.voice, self.settings.vocoder, self.settings.seed

    def emit(self, kind: str, value) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    def cancel(self) -> None:
        self.cancelled = True


class Worker:
    """Loads the voices, then runs batches until stopped. ``voices`` maps a name to a Voice once
    ``ready`` is set; ``load_error`` says why loading failed."""

    def __init__(self, settings: ServerSettings, metrics=None):
        self.settings, self.metrics = settings, metrics
        self.voices: dict = {}
        self.ready = threading.Event()
        self.load_error: Optional[str] = None
        self._incoming: collections.deque[Job] = collections.deque()
        self._active: list[Job] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="tts-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=10)

    @property
    def depth(self) -> int:
        """Requests waiting or in progress."""
        return len(self._incoming) + len(self._active)

    def submit(self, job: Job) -> None:
        with self._cond:
            if self.depth >= self.settings.max_queue:
                raise ServerBusy(f"the server is busy ({self.depth} requests queued); retry in a moment")
            self._incoming.append(job)
            self._cond.notify()
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self.depth)

    # --- the worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._load()
        except Exception as err:  # noqa: BLE001 - reported by /health and in the log; the server stays up
            self.load_error = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.error("tts serve: cannot load the voices: %s", self.load_error)
            return
        self.ready.set()
        while True:
            with self._cond:
                while not self._stop and not self._incoming and not self._active:
                    self._cond.wait()
                if self._stop:
                    return
                incoming = list(self._incoming)
                self._incoming.clear()
            for job in incoming:
                self._plan(job)
            self._drop_finished()
            if not self._active:
                continue
            if self._waiting_chunks() < self.settings.batch_size and self.settings.batch_wait > 0:
                with self._cond:  # a few ms for other requests to join this batch
                    if not self._incoming:
                        self._cond.wait(self.settings.batch_wait)
                    incoming = list(self._incoming)
                    self._incoming.clear()
                for job in incoming:
                    self._plan(job)
            try:
                self._step()
            except Exception:  # noqa: BLE001 - a bug in one batch must not take the server down
                log.exception("tts serve: a batch failed")
            self._gauge()

    def _load(self) -> None:
        from pathlib import Path

        from tts.text import Frontend
        from tts.voice import DEFAULT_VOICE, Voice

        frontend = Frontend()
        paths = [Path(p) for p in self.settings.voices] or [DEFAULT_VOICE]
        for path in paths:
            name = "default" if path == DEFAULT_VOICE else path.resolve().name
            voice = Voice.load(path, device=self.settings.device,
                               vocoder=self.settings.vocoder != "griffinlim", frontend=frontend)
            self.voices[name] = voice
            log.info("tts serve: voice %r from %s (%d Hz)", name, path, voice.sample_rate)
        frontend.text_to_ids("Ready.", next(iter(self.voices.values())).symbols)  # load the lexicon now

    def _plan(self, job: Job) -> None:
        from tts.text import TextError

        if job.cancelled:
            return
        voice = self.voices[job.voice]
        problem: Exception = TextError("the text is empty")
        try:
            for piece in split_text(job.text, job.settings.max_chars):
                try:
                    job.chunks.append(Chunk(0, len(job.chunks), piece, tuple(voice.encode(piece))))
                except TextError as err:
                    problem = err
        except Exception as err:  # noqa: BLE001 - the request's own error, never the server's
            problem = err
            job.chunks = []
        if not job.chunks:
            job.emit("error", problem)
            return
        job.emit("planned", [c.text for c in job.chunks])
        self._active.append(job)

    def _drop_finished(self) -> None:
        now = time.monotonic()
        kept = []
        for job in self._active:
            if job.cancelled:
                continue
            if now > job.deadline:
                job.emit("error", RequestTimeout(f"the request ran past the server's limit of "
                                                 f"{self.settings.timeout:g} s"))
                continue
            kept.append(job)
        self._active = kept

    def _waiting_chunks(self) -> int:
        return sum(len(job.chunks) - job.next for job in self._active)

    def _step(self) -> None:
        """One batch: the oldest job's key, its next chunks and those of later jobs with the same key."""
        key = self._active[0].key
        batch: list[tuple[Job, Chunk]] = []
        for job in self._active:
            if job.key != key:
                continue
            room = self.settings.batch_size - len(batch)
            if room <= 0:
                break
            take = min(room, 2 ** job.batches, len(job.chunks) - job.next)
            batch += [(job, chunk) for chunk in job.chunks[job.next:job.next + take]]
            job.next += take
            job.batches += 1
        voice = self.voices[key[0]]
        began = time.perf_counter()
        try:
            rendered = render(voice, [chunk for _, chunk in batch], speeds=[job.settings.speed for job, _ in batch],
                              vocoder=key[1], seed=key[2])
        except TTSError as err:  # e.g. a vocoder this voice lacks: the requests' own mistake
            for job in {id(job): job for job, _ in batch}.values():
                job.emit("error", err)
                job.cancel()
            return
        if self.metrics is not None:
            self.metrics.batch_sentences.observe(len(batch))
            self.metrics.sentences.inc(len(batch))
        log.debug("batch of %d sentences in %.3f s", len(batch), time.perf_counter() - began)
        for (job, chunk), piece in zip(batch, rendered):
            if job.cancelled:
                continue
            if chunk.position and job.settings.sentence_silence > 0:
                gap = np.zeros(round(job.settings.sentence_silence * voice.sample_rate), dtype=np.float32)
                job.emit("audio", gap)
                job.samples += len(gap)
            job.emit("audio", piece.wav)
            job.samples += len(piece.wav)
            if chunk.position == len(job.chunks) - 1:
                job.emit("done", job.samples / voice.sample_rate)
        self._active = [job for job in self._active if job.next < len(job.chunks) and not job.cancelled]


def job_settings(defaults: ServerSettings, *, vocoder: Optional[str], seed: Optional[int], speed: float,
                 sentence_silence: float) -> SynthesisSettings:
    """A request's SynthesisSettings: its own choices over the server's defaults."""
    settings = SynthesisSettings(vocoder=defaults.vocoder, batch_size=defaults.batch_size, max_chars=defaults.max_chars)
    return dataclasses.replace(settings, vocoder=vocoder or defaults.vocoder, seed=seed, speed=speed,
                               sentence_silence=sentence_silence)
