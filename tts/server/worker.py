"""The worker that owns the models: requests queue here, sentences of concurrent requests are
batched together through Tacotron, and the vocoder runs beside it.

Two stages, one owner. The acoustic thread plans each request (a Job: split and encoded with the
voice's frontend), builds batches and runs Tacotron (and the per-sentence speed change); the
vocoder threads turn each finished batch into audio while the acoustic thread already runs the
next batch's Tacotron. Nothing else calls a model: torch's thread settings and the Numba WaveNet
kernel's threads are process-wide (set once in tts.server.run). Griffin-Lim vocodes each sentence
on its own (its samples depend on nothing else in the batch: ``Vocoder.per_item``), so the vocoder
threads share a batch's sentences; a WaveNet batch is one call (its draws span the batch) on a
thread of its own, and each sentence's audio is handed out chunk by chunk as the sampler makes it,
so the first audio of a request leaves after the first few frames of its first sentence. One
WaveNet batch samples at a time (the kernel's threads fill the cores); between two sampler chunks
the batch sampling gives way to a waiting batch of new requests' first sentences, then goes on
where it stopped (its samples are the same: nothing it computes depends on when), and it stops
there when every job in it is cancelled or the worker stops.

Batching: each job contributes 1 chunk to its first batch, 2 to its second, 4 to its third and so
on (up to the batch size), so its first audio comes after one sentence while a long text still
reaches full batches. First sentences go first: a batch takes the jobs that have no audio yet
before the others' later sentences, and the vocoder threads take a batch's first sentences before
anything else waiting, so under load a new request is not queued behind the rest of older ones.
Jobs share a batch only when they share voice, vocoder and seed (one seed drives a batch's draws);
speeds may differ. At most ``AHEAD`` batches wait for the vocoder, so the
acoustic thread builds the next batch from the requests that arrived meanwhile; one more place is
kept for a batch of first sentences only, so a new request reaches Tacotron while older ones fill
the others.

Results go back to the job's asyncio queue through ``loop.call_soon_threadsafe``, in order: one
("planned", sentences) or ("error", exception), then ("audio", float32 samples) per piece
(silences included; a WaveNet sentence in several pieces), then ("done", seconds). A cancelled
job (client gone) or one past its deadline is dropped before its next batch, and its sentences still waiting for Griffin-Lim are skipped.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import itertools
import logging
import queue
import threading
import time
from typing import Optional

import numpy as np

from tts.errors import TTSError
from tts.memory import release_freed_memory
from tts.server.settings import ServerSettings
from tts.synth import Chunk, SynthesisSettings, change_speed, split_text
from tts.vocoders import Vocoder

log = logging.getLogger(__name__)

AHEAD = 2  # batches through Tacotron and not yet vocoded; bounds memory and keeps batches fresh
_NOTHING = np.zeros(0, dtype=np.float32)  # the end of a chunk whose audio came in pieces


class ServerBusy(TTSError):
    """The queue is full; the client should retry after a moment (503 with Retry-After)."""


class RequestTimeout(TTSError):
    """A request ran past the server's time limit."""


class _Abandoned(Exception):
    """Raised between sampler chunks to stop a WaveNet batch nobody is waiting for."""


class _Turns:
    """Which WaveNet batch samples: one at a time, the best-ranked waiting one first (a ticket is
    (rank, order): rank 0 for a batch with a request's first sentence, 1 otherwise). Between two
    sampler chunks the batch sampling calls ``give_way``: when a batch of a better rank waits, it
    takes its turn, and the one that gave way waits for its own again."""

    def __init__(self):
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, int]] = []  # a heap of tickets
        self._busy = False

    def take(self, ticket: tuple[int, int]) -> None:
        with self._cond:
            heapq.heappush(self._waiting, ticket)
            while self._busy or self._waiting[0] != ticket:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._busy = True

    def done(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def give_way(self, ticket: tuple[int, int]) -> bool:
        """True when another batch sampled meanwhile."""
        with self._cond:
            if not self._waiting or self._waiting[0][0] >= ticket[0]:
                return False
        self.done()
        self.take(ticket)
        return True


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
        self.emitted = 0  # chunks whose audio has all been handed out
        self.ready: dict[int, list[np.ndarray]] = {}  # audio of chunks not yet handed out, by position
        self.complete: set[int] = set()  # positions in ``ready`` whose audio is all there
        self.begun = False  # the silence before chunk ``emitted`` has been handed out
        self.cancelled = False
        self.arrived = time.monotonic()

    @property
    def key(self) -> tuple:
        return self.voice, self.settings.vocoder, self.settings.seed

    def emit(self, kind: str, value) -> None:
        if not self.loop.is_closed():  # closed: the server is stopping and nobody is listening
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    def cancel(self) -> None:
        self.cancelled = True


@dataclasses.dataclass(eq=False)
class _Batch:
    """Chunks through Tacotron, waiting for the vocoder: ``mels[i]`` (n_mels, T_i) is ``items[i]``'s."""

    voice: object
    vocoder: Vocoder  # one of ``voice``'s, resolved from the request's choice
    seed: Optional[int]
    items: list  # (Job, Chunk)
    mels: list
    left: int  # items not yet vocoded (or skipped)
    began: float
    place: threading.Semaphore  # its place beside the vocoder, given back once it is all vocoded


class Worker:
    """Loads the voices, then runs batches until stopped. ``voices`` maps a name to a Voice once
    ``ready`` is set; ``load_error`` says why loading failed."""

    def __init__(self, settings: ServerSettings, metrics=None):
        self.settings, self.metrics = settings, metrics
        self.voices: dict = {}
        self.ready = threading.Event()
        self.load_error: Optional[str] = None
        self._incoming: collections.deque[Job] = collections.deque()
        self._active: list[Job] = []  # jobs with chunks not yet batched (acoustic thread only)
        self._open: set[Job] = set()  # planned jobs whose audio is not all out
        self._cond = threading.Condition()
        self._emit_lock = threading.Lock()  # job.ready / emitted / samples, batch.left, _open
        self._ahead = threading.Semaphore(AHEAD)
        self._first_place = threading.Semaphore(1)  # beyond AHEAD, for a batch of first sentences only
        # (rank, order, batch, item indices), rank 0 for a job's first chunk, 1 otherwise; (2, ...) stops
        self._tasks: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._turns = _Turns()  # a vocoder that is not per_item (the WaveNet) samples one batch at a time
        self._samplers: set[threading.Thread] = set()  # the threads of such batches
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="tts-acoustic", daemon=True)
        self._vocoders = [threading.Thread(target=self._vocode_loop, name=f"tts-vocoder-{n}", daemon=True)
                          for n in range(settings.vocoder_threads)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=10)
        for _ in self._vocoders:
            self._tasks.put((2, next(self._order), None, None))
        for thread in self._vocoders + list(self._samplers):
            if thread.is_alive():
                thread.join(timeout=10)

    @property
    def depth(self) -> int:
        """Requests waiting or in progress."""
        with self._emit_lock:
            running = sum(not job.cancelled for job in self._open)
        return len(self._incoming) + running

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

    # --- the acoustic thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._load()
        except Exception as err:  # noqa: BLE001 - reported by /health and in the log; the server stays up
            self.load_error = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.error("tts serve: cannot load the voices: %s", self.load_error)
            return
        for thread in self._vocoders:
            thread.start()
        self.ready.set()
        while True:
            with self._cond:
                while not self._stop and not self._incoming and not self._active:
                    self._cond.wait()
                if self._stop:
                    return
            self._take_incoming()
            if not self._active:
                continue
            # wait for room beside the vocoder first, so the batch is built from the requests
            # that arrived meanwhile
            place = self._place()
            if place is None:
                return
            self._take_incoming()
            if self._active and self._waiting_chunks() < self.settings.batch_size and self.settings.batch_wait > 0:
                with self._cond:  # a few ms for other requests to join this batch
                    if not self._incoming:
                        self._cond.wait(self.settings.batch_wait)
                self._take_incoming()
            first_only = place is self._first_place
            if not self._active or (first_only and not any(job.batches == 0 for job in self._active)):
                place.release()
                continue
            try:
                handed = self._step(place)
            except Exception:  # noqa: BLE001 - a bug in one batch must not take the server down
                log.exception("tts serve: a batch failed")
                handed = False
            if not handed:
                place.release()
            self._gauge()

    def _place(self) -> Optional[threading.Semaphore]:
        """Room beside the vocoder for the next batch: one of the AHEAD places or, when they are
        all taken and a new request waits for its first audio, the place kept for first sentences.
        None once the worker stops."""
        while not self._stop:
            if self._ahead.acquire(timeout=0.02):
                return self._ahead
            self._take_incoming()  # a request that arrives meanwhile is planned, so it can be seen
            if any(job.batches == 0 for job in self._active) and self._first_place.acquire(blocking=False):
                return self._first_place
        return None

    def _take_incoming(self) -> None:
        with self._cond:
            incoming = list(self._incoming)
            self._incoming.clear()
        for job in incoming:
            self._plan(job)
        self._drop_finished()

    def _load(self) -> None:
        from pathlib import Path

        from tts.text import Frontend
        from tts.voice import DEFAULT_VOICE, Voice

        frontend = Frontend(normalizer=self.settings.normalizer)
        frontend.normalize("Ready.")  # a missing extra fails here, at start-up, and NeMo's grammars load now
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
        with self._emit_lock:
            self._open.add(job)
        self._active.append(job)

    def _drop_finished(self) -> None:
        now = time.monotonic()
        kept = []
        for job in self._active:
            if job.cancelled:
                self._close(job)
                continue
            if now > job.deadline:
                self._fail(job, RequestTimeout(f"the request ran past the server's limit of "
                                               f"{self.settings.timeout:g} s"))
                continue
            kept.append(job)
        self._active = kept

    def _waiting_chunks(self) -> int:
        return sum(len(job.chunks) - job.next for job in self._active)

    def _step(self, place: Optional[threading.Semaphore] = None) -> bool:
        """One batch through Tacotron: the oldest job's key, its next chunks and those of later jobs
        with the same key; then handed to the vocoder. In the place kept for first sentences
        (``place``), only jobs with no batch yet. False when nothing was handed over."""
        place = place or self._ahead
        first_only = place is self._first_place
        jobs = sorted(self._active, key=lambda job: job.batches > 0)  # stable: arrival order within each
        if first_only:
            jobs = [job for job in jobs if job.batches == 0]
        key = jobs[0].key if first_only else self._active[0].key
        items: list[tuple[Job, Chunk]] = []
        for job in jobs:
            if job.key != key:
                continue
            room = self.settings.batch_size - len(items)
            if room <= 0:
                break
            take = min(room, 2 ** job.batches, len(job.chunks) - job.next)
            items += [(job, chunk) for chunk in job.chunks[job.next:job.next + take]]
            job.next += take
            job.batches += 1
        self._active = [job for job in self._active if job.next < len(job.chunks)]
        voice = self.voices[key[0]]
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            # the first half of tts.synth.render (the second is _vocode): the same calls, so a
            # batch gives the samples `tts synth` gives for it
            vocoder = voice.vocoder_named(key[1])
            outputs = voice.mels_from_ids([chunk.ids for _, chunk in items], seed=key[2])
            mels = [change_speed(out["mel"], job.settings.speed) for out, (job, _) in zip(outputs, items)]
        except Exception as err:  # noqa: BLE001 - a TTSError is the requests' own mistake (a vocoder this
            # voice lacks); anything else is a bug in one batch, which must not take the server down
            if not isinstance(err, TTSError):
                log.exception("tts serve: a batch failed")
            for job in {id(job): job for job, _ in items}.values():
                self._fail(job, err)
            return False
        del outputs
        if self.metrics is not None:
            self.metrics.stage_cpu.labels("acoustic").inc(time.thread_time() - cpu)
            self.metrics.batch_sentences.observe(len(items))
            self.metrics.sentences.inc(len(items))
        batch = _Batch(voice=voice, vocoder=vocoder, seed=key[2], items=items, mels=mels, left=len(items),
                       began=began, place=place)
        if vocoder.per_item:  # one sentence per task: the vocoder threads share the batch
            for i, (_, chunk) in enumerate(items):
                self._tasks.put((int(chunk.position > 0), next(self._order), batch, [i]))
        else:  # one call on a thread of its own, which waits for its turn to sample
            first = any(chunk.position == 0 for _, chunk in items)
            ticket = (int(not first), next(self._order))
            thread = threading.Thread(target=self._vocode_task, args=(batch, list(range(len(items))), ticket),
                                      name="tts-sampler", daemon=True)
            self._samplers.add(thread)
            thread.start()
        return True

    # --- the vocoder threads ----------------------------------------------------------------------

    def _vocode_loop(self) -> None:
        while True:
            _, _, batch, indices = self._tasks.get()
            if batch is None:
                return
            self._vocode_task(batch, indices)

    def _vocode_task(self, batch: _Batch, indices: list[int], ticket: Optional[tuple[int, int]] = None) -> None:
        try:
            self._vocode(batch, indices, ticket)
        except Exception as err:  # noqa: BLE001 - a bug in one batch must not take the server down
            log.exception("tts serve: vocoding a batch failed")
            for i in indices:
                self._fail(batch.items[i][0], err)
            self._settle(batch, len(indices))
        finally:
            self._samplers.discard(threading.current_thread())

    def _vocode(self, batch: _Batch, indices: list[int], ticket: Optional[tuple[int, int]] = None) -> None:
        """The second half of tts.synth.render for ``indices`` of a batch. Griffin-Lim sentences of
        cancelled jobs, of jobs past their deadline and all of them once the worker stops are
        skipped; a WaveNet batch (``ticket``: its place in the turns) runs whole, since its draws
        span the batch, unless every job in it is cancelled or the worker stops."""
        now = time.monotonic()
        for i in indices:
            job = batch.items[i][0]
            if now > job.deadline and not job.cancelled:
                self._fail(job, RequestTimeout(f"the request ran past the server's limit of "
                                               f"{self.settings.timeout:g} s"))
        live = [] if self._stop else [i for i in indices if not batch.items[i][0].cancelled]
        for i in set(indices) - set(live):
            self._close(batch.items[i][0])
        if live:
            cpu = time.thread_time()
            if batch.vocoder.per_item:
                wavs = batch.vocoder.vocode([batch.mels[i] for i in live], seed=batch.seed)
                for i, wav in zip(live, wavs):
                    self._deliver(*batch.items[i], wav)
            else:
                self._sample(batch, indices, ticket or (1, next(self._order)))
            if self.metrics is not None:
                self.metrics.stage_cpu.labels("vocoder").inc(time.thread_time() - cpu)
        self._settle(batch, len(indices))

    def _sample(self, batch: _Batch, indices: list[int], ticket: tuple[int, int]) -> None:
        """A WaveNet batch, in its turn, streamed piece by piece; between two chunks it gives way
        to a batch of better rank, and stops when nobody waits for it any more."""
        hop = batch.voice.audio.hop_length
        ends = [batch.mels[i].shape[1] * hop for i in indices]
        made = [0] * len(indices)

        def piece(k: int, wav: np.ndarray) -> None:  # streamed as the sampler makes it
            start, made[k] = made[k], made[k] + len(wav)
            self._deliver(*batch.items[indices[k]], wav, complete=False)
            if all(end <= start for end in ends[k + 1:]):  # the chunk's last piece: between two chunks
                if self._stop or all(batch.items[i][0].cancelled for i in indices):
                    raise _Abandoned
                self._turns.give_way(ticket)

        self._turns.take(ticket)
        try:
            batch.vocoder.vocode([batch.mels[i] for i in indices], seed=batch.seed, on_audio=piece)
        except _Abandoned:
            for i in indices:
                self._close(batch.items[i][0])
            return
        finally:
            self._turns.done()
        for i in indices:
            self._deliver(*batch.items[i], _NOTHING)

    def _settle(self, batch: _Batch, count: int) -> None:
        """``count`` of the batch's items are done; the last one frees its place beside the vocoder."""
        with self._emit_lock:
            batch.left -= count
            last = batch.left == 0
        if last:
            batch.mels.clear()
            release_freed_memory()  # the batch's temporaries, as tts.synth.render does (tts/memory.py)
            log.debug("batch of %d sentences in %.3f s", len(batch.items), time.perf_counter() - batch.began)
            batch.place.release()
            self._gauge()

    def _deliver(self, job: Job, chunk: Chunk, wav: np.ndarray, *, complete: bool = True) -> None:
        """Audio of a chunk (all of it, or with ``complete=False`` the next piece of it): handed out
        once every earlier chunk of its job has been, pieces in the order they came."""
        rate = self.voices[job.voice].sample_rate
        with self._emit_lock:
            if job.cancelled or job not in self._open:
                self._open.discard(job)
                return
            job.ready.setdefault(chunk.position, []).append(wav)
            if complete:
                job.complete.add(chunk.position)
            while job.emitted in job.ready:
                position = job.emitted
                if not job.begun:
                    job.begun = True
                    if position and job.settings.sentence_silence > 0:
                        self._hand_out(job, np.zeros(round(job.settings.sentence_silence * rate), dtype=np.float32))
                for piece in job.ready[position]:
                    self._hand_out(job, piece)
                job.ready[position].clear()
                if position not in job.complete:
                    break
                del job.ready[position]
                job.complete.discard(position)
                job.emitted += 1
                job.begun = False
            if job.emitted == len(job.chunks):
                job.emit("done", job.samples / rate)
                self._open.discard(job)

    @staticmethod
    def _hand_out(job: Job, piece: np.ndarray) -> None:
        if len(piece):
            job.emit("audio", piece)
            job.samples += len(piece)

    def _fail(self, job: Job, error: Exception) -> None:
        """Ends a job with an error (before its first audio a 4xx/5xx, after it an early end)."""
        with self._emit_lock:
            if job not in self._open:
                return
            self._open.discard(job)
        job.emit("error", error)
        job.cancel()

    def _close(self, job: Job) -> None:
        with self._emit_lock:
            self._open.discard(job)


def job_settings(defaults: ServerSettings, *, vocoder: Optional[str], seed: Optional[int], speed: float,
                 sentence_silence: float) -> SynthesisSettings:
    """A request's SynthesisSettings: its own choices over the server's defaults."""
    settings = SynthesisSettings(vocoder=defaults.vocoder, batch_size=defaults.batch_size, max_chars=defaults.max_chars)
    return dataclasses.replace(settings, vocoder=vocoder or defaults.vocoder, seed=seed, speed=speed,
                               sentence_silence=sentence_silence)
