"""`tts serve` (tts.server): a real uvicorn server in a subprocess on free ports, driven by httpx,
the wyoming client library and a headless browser; the tiny random voice of tests/conftest.py."""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("wyoming")
pytest.importorskip("prometheus_client")

from tts.server.settings import ServerError, ServerSettings  # noqa: E402

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HOP, RATE = 64, 8000  # the tiny voice
BATCH = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_voice, tmp_path_factory):
    port, wyoming_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tts.cli", "serve", "--voice", str(tiny_voice), "--port", str(port),
               "--wyoming", f"tcp://127.0.0.1:{wyoming_port}", "--device", "cpu", "--api-key", KEY,
               "--batch-size", str(BATCH), "--max-text", "2000", "--max-queue", "6", "--timeout", "60"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not become healthy: {log.read_text()}")
            time.sleep(0.2)
        yield {"base": base, "wyoming": ("127.0.0.1", wyoming_port), "process": process, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("the server did not stop on SIGTERM within 15 s")


@pytest.fixture(scope="module")
def voice(tiny_voice):
    from tts.voice import Voice

    return Voice.load(tiny_voice, device="cpu")


def expected_samples(voice, text: str, silence: float = 0.3) -> int:
    """The tiny voice never stops: each chunk lasts its length bound, 1 frame per symbol + 4."""
    from tts.synth import split_text

    chunks = split_text(text)
    return sum((len(voice.encode(c)) + 4) * HOP for c in chunks) + (len(chunks) - 1) * round(silence * RATE)


def speech(server, body: dict, **kwargs) -> "httpx.Response":
    return httpx.post(f"{server['base']}/v1/audio/speech", json=body, headers=AUTH, timeout=60, **kwargs)


def metric(server, name: str) -> float:
    text = httpx.get(f"{server['base']}/metrics", headers=AUTH, timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2")


def test_bind_rules_and_settings():
    with pytest.raises(ServerError, match="--api-key"):
        ServerSettings(host="0.0.0.0")
    assert ServerSettings(host="0.0.0.0", api_key="k").host == "0.0.0.0"
    assert ServerSettings(host="0.0.0.0", insecure=True).insecure
    with pytest.raises(ServerError, match="Wyoming protocol has no authentication"):
        ServerSettings(wyoming="tcp://0.0.0.0:10200", api_key="k", host="0.0.0.0")
    with pytest.raises(ServerError, match="tcp://HOST:PORT"):
        ServerSettings(wyoming="udp://127.0.0.1:1")
    with pytest.raises(ServerError, match="name the origins"):
        ServerSettings(cors_origins=("*",))
    assert ServerSettings().host == "127.0.0.1"


def test_page_health_models_voices_and_metrics(server):
    base = server["base"]
    page = httpx.get(base + "/", timeout=10)
    assert page.status_code == 200 and "<textarea" in page.text and "http" not in page.text.split("<script>")[0]
    assert "cdn" not in page.text.lower() and "src=\"http" not in page.text  # nothing fetched from elsewhere
    assert httpx.get(base + "/health", timeout=10).json()["status"] == "ok"
    models = httpx.get(base + "/v1/models", headers=AUTH, timeout=10).json()
    assert {"tts-1", "tts"} <= {m["id"] for m in models["data"]}
    voices = httpx.get(base + "/v1/voices", headers=AUTH, timeout=10).json()["voices"]
    assert [v["name"] for v in voices] == ["tiny"] and voices[0]["sample_rate"] == RATE
    assert {"wav", "pcm", "flac"} <= set(voices[0]["formats"])
    text = httpx.get(base + "/metrics", headers=AUTH, timeout=10).text
    for name in ("tts_requests_total", "tts_request_seconds", "tts_time_to_first_audio_seconds", "tts_queue_depth",
                 "tts_audio_seconds_total"):
        assert name in text
    assert "access-control-allow-origin" not in page.headers  # no CORS unless origins are named


def test_api_key_is_required(server):
    base = server["base"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.post(base + "/v1/audio/speech", json={"input": "Hello."}, headers=headers, timeout=10)
        assert response.status_code == 401 and "API key" in response.json()["error"]["message"]
    assert httpx.get(base + "/metrics", timeout=10).status_code == 401
    assert httpx.get(base + "/api/tts", params={"text": "Hi."}, timeout=10).status_code == 401
    assert httpx.post(base + "/", json={"text": "Hi."}, timeout=10).status_code == 401  # the page is open, not POST /
    assert httpx.get(base + "/health", timeout=10).status_code == 200  # open: for load balancers
    assert httpx.get(base + "/", timeout=10).status_code == 200  # the page asks for the key


def test_speech_streams_the_same_samples_as_the_batches_it_made(server, voice):
    """Sentences are rendered 1, 2, 4... per batch; rendering the same batches in-process with the
    same seed and torch's thread count (the server's --torch-threads, 1) gives the same samples, in
    order, with the silences between them."""
    import torch

    from tts.server.audio import pcm16
    from tts.synth import SynthesisSettings, plan, render

    text = "One sentence here. And a second one. A third now. The fourth one. And the fifth."
    response = speech(server, {"model": "tts-1", "input": text, "voice": "tiny", "response_format": "pcm",
                               "seed": 7, "vocoder": "griffinlim"})
    assert response.status_code == 200 and response.headers["x-sample-rate"] == str(RATE)
    got = pcm(response.content)
    chunks = list(plan(voice, [text], SynthesisSettings()))
    groups = [chunks[0:1], chunks[1:3], chunks[3:5]]  # a lone request's ramp at batch size 4
    pieces = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Griffin-Lim's FFTs round differently on 2 threads (by up to ~2e-4)
    try:
        for group in groups:
            for rendered in render(voice, group, speeds=[1.0] * len(group), vocoder="griffinlim", seed=7):
                if pieces:
                    pieces.append(np.zeros(round(0.3 * RATE), np.float32))
                pieces.append(rendered.wav)
    finally:
        torch.set_num_threads(threads)
    expected = pcm(pcm16(np.concatenate(pieces)))
    assert len(got) == len(expected) == expected_samples(voice, text)
    np.testing.assert_array_equal(got, expected)
    for stage in ("acoustic", "vocoder"):  # both stages' CPU time is counted
        assert metric(server, f'tts_stage_cpu_seconds_total{{stage="{stage}"}}') > 0


def test_formats(server, voice):
    import io

    import soundfile as sf

    text = "Hello there. Second sentence."
    expected = expected_samples(voice, text)
    streamed = speech(server, {"input": text, "response_format": "wav", "vocoder": "griffinlim"})
    assert streamed.headers["content-type"] == "audio/wav"
    data, rate = sf.read(io.BytesIO(streamed.content), dtype="int16")  # a streamed header: length unknown
    assert rate == RATE and len(data) == expected
    whole = httpx.get(server["base"] + "/api/tts", params={"text": text, "vocoder": "griffinlim"}, headers=AUTH,
                      timeout=60)
    assert whole.status_code == 200 and whole.content[4:8] == (36 + 2 * expected).to_bytes(4, "little")
    for fmt in ("flac", "ogg", "mp3"):
        response = speech(server, {"input": "Hello.", "response_format": fmt, "vocoder": "griffinlim"})
        assert response.status_code == 200, response.text
        decoded, rate = sf.read(io.BytesIO(response.content))
        assert rate == RATE and abs(len(decoded) - expected_samples(voice, "Hello.")) < 2000  # mp3 pads


@pytest.mark.parametrize("body, status, message", [
    ({"input": ""}, 400, "empty"),
    ({"input": "   "}, 400, "empty"),
    ({"input": "🙂 🙂"}, 400, "nothing speakable"),
    ({"input": "x" * 2001}, 400, "at most 2000"),
    ({"input": "Hello.", "voice": "../../etc"}, 400, "unknown voice"),
    ({"input": "Hello.", "voice": "alloy"}, 400, "unknown voice"),
    ({"input": "Hello.", "response_format": "aac"}, 400, "response_format"),
    ({"input": "Hello.", "speed": 9}, 400, "speed must be between"),
    ({"input": "Hello.", "speed": "fast"}, 400, "speed must be a number"),
    ({"input": "Hello.", "seed": 99999999999999999999}, 400, "seed"),
    ({"input": "Hello.", "vocoder": "hifigan"}, 400, "unknown vocoder"),
    ({"input": "Hello.", "model": "gpt-5"}, 400, "unknown model"),
    ({"input": "Hello.", "colour": "red"}, 400, "unknown field"),
    ({"voice": "tiny"}, 400, "missing field 'input'"),
    ({"input": 42}, 400, "input must be a string"),
    ({"input": "Say {HH AX0 L OW1}."}, 400, "'AX0' is not an ARPAbet phoneme"),
    ({"input": "Hello.", "stream_format": "sse"}, 400, "stream_format 'sse' is not served; use 'audio'"),
    ({"input": "Hello.", "instructions": ["loud"]}, 400, "instructions must be a string"),
])
def test_bad_requests_get_a_4xx_json_error(server, body, status, message):
    response = speech(server, body)
    assert response.status_code == status and message in response.json()["error"]["message"]
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_piper_http_api(server, voice):
    """POST / as Piper's HTTP server takes it: a complete wav; length_scale is 1 / speed."""
    import io

    import soundfile as sf

    def post(body):
        return httpx.post(server["base"] + "/", json=body, headers=AUTH, timeout=60)

    text = "Hello there. Second sentence."
    response = post({"text": text, "voice": "tiny", "speaker_id": 0, "noise_scale": 0.667})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    data, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    assert rate == RATE and len(data) == expected_samples(voice, text)
    slower, _ = sf.read(io.BytesIO(post({"text": "Hello there.", "length_scale": 2.0}).content), dtype="int16")
    assert abs(len(slower) - 2 * expected_samples(voice, "Hello there.")) < 2 * HOP
    for body, message in (({"text": "Hi.", "colour": "red"}, "unknown field(s): colour"),
                          ({"voice": "tiny"}, "missing field 'text'"),
                          ({"text": "Hi.", "length_scale": 9}, "length_scale must be between 0.25 and 4.0")):
        bad = post(body)
        assert bad.status_code == 400 and message in bad.json()["error"]["message"], bad.text


def test_openai_fields_this_voice_ignores_are_accepted(server):
    response = speech(server, {"input": "Hello.", "stream_format": "audio", "instructions": "Speak calmly."})
    assert response.status_code == 200 and response.content[:4] == b"RIFF"


def test_malformed_bodies_and_queries(server):
    base = server["base"]
    for raw in (b"{bad", b"[1, 2]", b"\xff\xfe"):
        response = httpx.post(base + "/v1/audio/speech", content=raw, headers=AUTH, timeout=10)
        assert response.status_code == 400 and response.json()["error"]["message"]
    response = httpx.get(base + "/api/tts", params={"text": "Hi.", "speed": "abc"}, headers=AUTH, timeout=10)
    assert response.status_code == 400 and "speed" in response.json()["error"]["message"]
    assert httpx.get(base + "/nowhere", headers=AUTH, timeout=10).status_code == 404
    assert speech(server, {"input": "Still fine afterwards."}).status_code == 200  # nothing broke the worker


def test_concurrent_clients_each_get_their_own_audio(server, voice):
    texts = [" ".join(f"Client {n} says sentence {k}." for k in range(n + 1)) for n in range(4)]
    results = {}

    def client(n):
        results[n] = speech(server, {"input": texts[n], "response_format": "pcm", "vocoder": "wavenet", "seed": n})

    batched_before = metric(server, "tts_batch_sentences_sum") - metric(server, "tts_batch_sentences_count")
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, text in enumerate(texts):
        assert results[n].status_code == 200
        assert len(pcm(results[n].content)) == expected_samples(voice, text)
    # batches of more than one sentence happened (requests of one seed share a batch only with
    # themselves here, so this counts the ramp of each request)
    assert metric(server, "tts_batch_sentences_sum") - metric(server, "tts_batch_sentences_count") > batched_before


def test_a_full_queue_answers_503_with_retry_after(server):
    text = " ".join(f"Sentence {k} of a long request." for k in range(12))
    statuses, retry = [], []

    def client():
        response = speech(server, {"input": text, "response_format": "pcm", "vocoder": "griffinlim"})
        statuses.append(response.status_code)
        retry.append(response.headers.get("retry-after"))

    threads = [threading.Thread(target=client) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 503 in statuses and set(statuses) <= {200, 503}
    assert statuses.count(200) >= 6
    assert all(r == "1" for s, r in zip(statuses, retry) if s == 503)


@pytest.mark.parametrize("vocoder", ["wavenet", "griffinlim"])
def test_client_disconnect_stops_its_work(server, vocoder):
    text = " ".join(f"Sentence {k} that nobody will hear." for k in range(40))
    cancelled, sentences = metric(server, "tts_cancelled_total"), metric(server, "tts_sentences_total")
    with httpx.stream("POST", server["base"] + "/v1/audio/speech", headers=AUTH, timeout=60,
                      json={"input": text, "response_format": "pcm", "vocoder": vocoder}) as response:
        assert response.status_code == 200
        next(response.iter_raw())  # the first audio, then hang up
    deadline = time.monotonic() + 20
    while metric(server, "tts_cancelled_total") == cancelled and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(server, "tts_cancelled_total") == cancelled + 1
    assert metric(server, "tts_sentences_total") - sentences < 40
    assert speech(server, {"input": "Next request."}).status_code == 200


def test_wyoming_describe_and_synthesize(server, voice):
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize, SynthesizeVoice

    host, port = server["wyoming"]
    text = "Turning on the kitchen lights. Done."

    async def talk():
        async with AsyncTcpClient(host, port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await client.read_event())
            await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="tiny")).event())
            events = []
            while True:
                event = await asyncio.wait_for(client.read_event(), timeout=60)
                events.append(event)
                if AudioStop.is_type(event.type):
                    return info, events

    info, events = asyncio.run(talk())
    assert [v.name for v in info.tts[0].voices] == ["tiny"]
    assert AudioStart.is_type(events[0].type) and AudioStart.from_event(events[0]).rate == RATE
    chunks = [AudioChunk.from_event(e) for e in events[1:-1]]
    assert chunks and all(AudioChunk.is_type(e.type) for e in events[1:-1])
    assert sum(len(c.audio) for c in chunks) == 2 * expected_samples(voice, text)


def test_wyoming_speaks_streamed_text_sentence_by_sentence(server, voice):
    """Wyoming 1.7 streaming, as Home Assistant sends a language model's answer while it is written:
    each sentence is spoken as soon as the next one begins, the compatibility synthesize inside the
    stream is ignored, an unspeakable sentence is skipped, and synthesize-stopped ends it."""
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info
    from wyoming.tts import (Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped,
                             SynthesizeVoice)

    host, port = server["wyoming"]
    chunks = ["Turning on the", " kitchen lights. Done", ". 🙂. All", " good."]

    async def read_until(client, stop_type):
        events = []
        while True:
            event = await asyncio.wait_for(client.read_event(), timeout=60)
            events.append(event)
            if event.type == stop_type:
                return events

    async def talk():
        async with AsyncTcpClient(host, port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await client.read_event())
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="tiny")).event())
            await client.write_event(SynthesizeChunk(text=chunks[0]).event())
            await client.write_event(SynthesizeChunk(text=chunks[1]).event())
            first = await read_until(client, AudioStop().event().type)  # before the text is all there
            await client.write_event(Synthesize(text="".join(chunks), voice=SynthesizeVoice(name="tiny")).event())
            for chunk in chunks[2:]:
                await client.write_event(SynthesizeChunk(text=chunk).event())
            await client.write_event(SynthesizeStop().event())
            return info, first + await read_until(client, SynthesizeStopped().event().type)

    info, events = asyncio.run(talk())
    assert info.tts[0].supports_synthesize_streaming
    assert events[-1].type == SynthesizeStopped().event().type
    spoken, current = [], None
    for event in events[:-1]:
        if AudioStart.is_type(event.type):
            current = 0
        elif AudioChunk.is_type(event.type):
            current += len(AudioChunk.from_event(event).audio) // 2
        elif AudioStop.is_type(event.type):
            spoken.append(current)
    sentences = ["Turning on the kitchen lights.", "Done.", "All good."]
    assert spoken == [expected_samples(voice, s) for s in sentences]


def test_griffin_lim_is_safe_on_two_threads(voice):
    """The server vocodes Griffin-Lim sentences on several threads: each draws its initial phase
    from its own generator, so two threads at once get what one thread alone gets (that these are
    torchaudio's samples is tests/test_audio.py's)."""
    import torch

    mels = [torch.randn(voice.audio.n_mels, frames, generator=torch.Generator().manual_seed(frames)) - 4
            for frames in (9, 23, 40, 17)]
    alone = [voice.vocode([mel], vocoder="griffinlim", seed=3)[0] for mel in mels]
    got: dict = {}

    def run(n):
        for round_ in range(5):
            for k in range(n, len(mels), 2):
                got[k, round_] = voice.vocode([mels[k]], vocoder="griffinlim", seed=3)[0]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (k, _), wav in got.items():
        np.testing.assert_array_equal(wav, alone[k])


def test_health_says_why_a_voice_did_not_load(tmp_path):
    """/health is 503 until the voices are loaded; a voice that cannot load keeps it 503 with the
    reason, and speech requests get 503 instead of reaching a model."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "voice.json").write_text('{"format": 999}')
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tts.cli", "serve", "--voice", str(broken), "--port", str(port),
                                "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(base + "/health", timeout=2)
                if health.json()["status"] != "loading":
                    break
                assert health.status_code == 503 and health.headers["retry-after"] == "1"
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "unknown card format 999" in health.json()["error"]
        response = httpx.post(base + "/v1/audio/speech", json={"input": "Hello."}, timeout=10)
        assert response.status_code == 503 and "could not load its voices" in response.json()["error"]["message"]
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_worker_drops_a_job_past_its_deadline(tiny_voice):
    from tts.server.worker import Job, RequestTimeout, Worker, job_settings

    settings = ServerSettings(voices=(str(tiny_voice),), device="cpu", timeout=5)
    worker = Worker(settings)
    worker.start()
    try:
        assert worker.ready.wait(60)

        async def run():
            job = Job(voice="tiny", text="Too late. Far too late.", deadline=time.monotonic() - 1,
                      settings=job_settings(settings, vocoder="griffinlim", seed=None, speed=1.0, sentence_silence=0.3),
                      loop=asyncio.get_running_loop())
            worker.submit(job)
            return [await asyncio.wait_for(job.events.get(), 10) for _ in range(2)]

        (first, _), (kind, error) = asyncio.run(run())
        assert first == "planned" and kind == "error" and isinstance(error, RequestTimeout)
    finally:
        worker.stop()


def test_worker_streams_a_wavenet_sentence_chunk_by_chunk(tiny_voice, voice, monkeypatch):
    """With the WaveNet, a sentence's audio leaves the worker as the sampler makes each chunk (here
    16 frames), in order, and the pieces with the silence between sentences are the samples
    `tts synth`'s render gives for the same batches."""
    import tts.models.wavenet_fast as fast
    from tts.server.worker import Worker
    from tts.synth import SynthesisSettings, plan, render

    monkeypatch.setattr(fast, "CHUNK_SAMPLES", 16 * HOP)
    settings = ServerSettings(voices=(str(tiny_voice),), device="cpu", batch_size=BATCH)
    text = "Turning on the kitchen lights in the hall. Done."
    worker = Worker(settings)
    worker.start()
    try:
        assert worker.ready.wait(60)
        _, (events,) = _collect(worker, settings, [text])
    finally:
        worker.stop()
    assert events[0][0] == "planned" and events[-1][0] == "done"
    pieces = [value for kind, value in events if kind == "audio"]
    chunks = list(plan(voice, [text], SynthesisSettings()))
    first, second = (render(voice, [chunk], speeds=[1.0], vocoder="wavenet", seed=7)[0].wav for chunk in chunks)
    frames = len(first) // HOP
    assert frames > 32  # three chunks of 16 frames at least
    assert [len(p) for p in pieces[: -(-frames // 16)]] == [min(16, frames - f) * HOP for f in range(0, frames, 16)]
    silence = np.zeros(round(0.3 * RATE), np.float32)
    np.testing.assert_array_equal(np.concatenate(pieces), np.concatenate([first, silence, second]))


@contextlib.contextmanager
def _unthreaded_worker(tiny_voice, batch_size):
    """A Griffin-Lim worker with its voice loaded and no threads (a batch the test builds leaves its
    tasks in the queue), and ``planned(text)``, which plans a job for the text."""
    from tts.server.worker import Job, Worker, job_settings

    settings = ServerSettings(voices=(str(tiny_voice),), device="cpu", batch_size=batch_size, vocoder="griffinlim")
    worker = Worker(settings)
    worker._load()
    loop = asyncio.new_event_loop()

    def planned(text):
        job = Job(voice="tiny", text=text, deadline=time.monotonic() + 60, loop=loop,
                  settings=job_settings(settings, vocoder="griffinlim", seed=1, speed=1.0, sentence_silence=0.3))
        worker._plan(job)
        return job

    try:
        yield worker, planned
    finally:
        loop.close()


def test_a_new_requests_first_sentence_goes_first(tiny_voice):
    """A batch takes the first sentence of a request with no audio yet before an older request's
    later sentences, and the vocoder threads take it first too."""
    with _unthreaded_worker(tiny_voice, 2) as (worker, planned):
        old = planned("One here. Two here. Three here. Four here.")
        old.next, old.batches = 1, 1  # its first sentence went out in an earlier batch
        new = planned("Five here. Six here.")
        assert worker._step()
        tasks = sorted(worker._tasks.get_nowait() for _ in range(2))
        assert worker._tasks.empty()
        assert [(batch.items[i][0], batch.items[i][1].position) for _, _, batch, (i,) in tasks] == [(new, 0), (old, 1)]


def test_sampler_turns_give_way_only_to_a_better_rank():
    """One WaveNet batch samples at a time; between chunks it gives way to a waiting batch of a
    better rank (a request's first sentences), never to one of the same rank, and goes on after."""
    from tts.server.worker import _Turns

    turns, order = _Turns(), []
    turns.take((1, 0))
    assert not turns.give_way((1, 0))  # nobody waits

    def batch(ticket):
        turns.take(ticket)
        order.append(ticket)
        turns.done()

    later, first = threading.Thread(target=batch, args=((1, 1),)), threading.Thread(target=batch, args=((0, 2),))
    later.start()
    while not turns._waiting:
        time.sleep(0.01)
    assert not turns.give_way((1, 0))  # the same rank waits its turn
    first.start()
    while len(turns._waiting) < 2:
        time.sleep(0.01)
    assert turns.give_way((1, 0))  # the first sentences go, then this batch again, before (1, 1)
    order.append((1, 0))
    turns.done()
    later.join(10)
    first.join(10)
    assert order == [(0, 2), (1, 0), (1, 1)]


def _collect(worker, settings, texts, *, vocoder="wavenet", seed=7, when=None):
    """Submits a job per text (``when[k]``: an event job k waits for before it is submitted) and
    returns each job's events up to its end."""
    from tts.server.worker import Job, job_settings

    async def run():
        loop = asyncio.get_running_loop()
        jobs = [Job(voice="tiny", text=text, deadline=time.monotonic() + 120, loop=loop,
                    settings=job_settings(settings, vocoder=vocoder, seed=seed, speed=1.0, sentence_silence=0.3))
                for text in texts]

        async def one(k, job):
            if when and when.get(k) is not None:
                await loop.run_in_executor(None, when[k].wait, 60)
            worker.submit(job)
            events = []
            while not events or events[-1][0] not in ("done", "error"):
                events.append(await asyncio.wait_for(job.events.get(), 120))
            return events

        return jobs, await asyncio.gather(*(one(k, job) for k, job in enumerate(jobs)))

    return asyncio.run(run())


def test_a_wavenet_batch_gives_way_to_a_new_requests_first_sentence(tiny_voice, voice, monkeypatch):
    """While an older request's later sentences sample, a new request's first sentence goes through
    Tacotron (its own place beside the vocoder) and samples between two of their chunks; both
    requests still get exactly the samples `tts synth`'s render gives for their batches."""
    import tts.models.wavenet_fast as fast
    from tts.server.worker import Worker
    from tts.synth import SynthesisSettings, plan, render

    monkeypatch.setattr(fast, "CHUNK_SAMPLES", 16 * HOP)
    settings = ServerSettings(voices=(str(tiny_voice),), device="cpu", batch_size=BATCH)
    old_text = "Hi. Turning on the kitchen lights in the hall and the porch. And the long garden path lights too."
    new_text = "Is the front door locked?"
    worker = Worker(settings)
    submit_new, gave_way, delivered = threading.Event(), [], []
    give_way, deliver = worker._turns.give_way, worker._deliver

    def watched_give_way(ticket):
        if ticket[0] == 1 and not submit_new.is_set():  # the old request's later sentences, one chunk in
            submit_new.set()
            deadline = time.monotonic() + 60
            while not worker._turns._waiting and time.monotonic() < deadline:
                time.sleep(0.01)  # the new request's first sentence through Tacotron
        gave_way.append(give_way(ticket))
        return gave_way[-1]

    def watched_deliver(job, chunk, wav, **kwargs):
        delivered.append((job.text, chunk.position, kwargs.get("complete", True)))
        deliver(job, chunk, wav, **kwargs)

    monkeypatch.setattr(worker._turns, "give_way", watched_give_way)
    monkeypatch.setattr(worker, "_deliver", watched_deliver)
    worker.start()
    try:
        assert worker.ready.wait(60)
        jobs, (old_events, new_events) = _collect(worker, settings, [old_text, new_text], when={1: submit_new})
    finally:
        worker.stop()
    assert True in gave_way
    old_done = max(i for i, (text, _, complete) in enumerate(delivered) if text == old_text and not complete)
    new_first = delivered.index((new_text, 0, False))
    assert new_first < old_done  # the new request's audio began before the old batch ended
    assert old_events[-1][0] == new_events[-1][0] == "done"

    def rendered(text, groups):
        chunks = list(plan(voice, [text], SynthesisSettings()))
        wavs = [r.wav for group in groups
                for r in render(voice, chunks[group], speeds=[1.0] * len(chunks[group]), vocoder="wavenet", seed=7)]
        silence = np.zeros(round(0.3 * RATE), np.float32)
        return np.concatenate([x for k, wav in enumerate(wavs) for x in ([silence, wav] if k else [wav])])

    old_audio = np.concatenate([v for kind, v in old_events if kind == "audio"])
    new_audio = np.concatenate([v for kind, v in new_events if kind == "audio"])
    np.testing.assert_array_equal(old_audio, rendered(old_text, [slice(0, 1), slice(1, 3)]))
    np.testing.assert_array_equal(new_audio, rendered(new_text, [slice(0, 1)]))


def test_a_new_request_reaches_tacotron_when_the_places_are_full(tiny_voice):
    """With every place beside the vocoder taken, the place kept for first sentences takes a batch
    of new requests' first sentences only; with no new request it is not taken."""
    from tts.server.worker import AHEAD

    with _unthreaded_worker(tiny_voice, 4) as (worker, planned):
        for _ in range(AHEAD):
            assert worker._ahead.acquire(blocking=False)
        old = planned("One here. Two here. Three here. Four here.")
        old.next, old.batches = 1, 1
        threading.Timer(0.3, setattr, (worker, "_stop", True)).start()
        assert worker._place() is None  # only an older request waits: no place for it
        worker._stop = False
        new = planned("Five here. Six here.")
        place = worker._place()
        assert place is worker._first_place
        assert worker._step(place)
        tasks = [worker._tasks.get_nowait()]
        assert worker._tasks.empty()
        (_, _, batch, (i,)), = tasks
        assert batch.items[i][0] is new and batch.items[i][1].position == 0 and len(batch.items) == 1
        assert old.next == 1 and new.next == 1
        worker._settle(batch, 1)
        assert worker._first_place.acquire(blocking=False)  # given back once vocoded


def test_a_wavenet_batch_stops_when_its_request_is_cancelled(tiny_voice, monkeypatch):
    """A client that hangs up mid-sentence stops the WaveNet between two chunks: fewer chunks are
    sampled than the sentence has, and its place beside the vocoder is given back."""
    import tts.models.wavenet_fast as fast
    from tts.server.worker import AHEAD, Job, Worker, job_settings

    monkeypatch.setattr(fast, "CHUNK_SAMPLES", 16 * HOP)
    settings = ServerSettings(voices=(str(tiny_voice),), device="cpu", batch_size=BATCH)
    text = "Turning on the kitchen lights in the hall, the porch, the long garden path and the garage."
    worker = Worker(settings)
    pieces, frames, deliver, sample = [], [], worker._deliver, worker._sample

    def watched_sample(batch, indices, ticket):
        frames.extend(batch.mels[i].shape[1] for i in indices)
        sample(batch, indices, ticket)

    def watched_deliver(job, chunk, wav, **kwargs):
        pieces.append(len(wav))
        if len(pieces) == 2:
            job.cancel()  # the client hangs up
        deliver(job, chunk, wav, **kwargs)

    monkeypatch.setattr(worker, "_deliver", watched_deliver)
    monkeypatch.setattr(worker, "_sample", watched_sample)
    worker.start()
    try:
        assert worker.ready.wait(60)

        async def run():
            job = Job(voice="tiny", text=text, deadline=time.monotonic() + 60, loop=asyncio.get_running_loop(),
                      settings=job_settings(settings, vocoder="wavenet", seed=7, speed=1.0, sentence_silence=0.3))
            worker.submit(job)
            await asyncio.wait_for(job.events.get(), 60)  # planned
            return job

        job = asyncio.run(run())
        deadline = time.monotonic() + 60
        while (not job.cancelled or worker._samplers or worker._ahead._value < AHEAD) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not worker._samplers and worker._ahead._value == AHEAD
    finally:
        worker.stop()
    assert job.cancelled and frames[0] > 4 * 16  # the sentence has more than 4 chunks
    assert len(pieces) == 2  # it hung up during the second chunk, the last one sampled


def _browser():
    """A headless Chromium driven by selenium, or None with the reason."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install selenium)"
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        return None, "no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1000,800"):
        options.add_argument(flag)
    try:
        return webdriver.Chrome(service=Service(driver_path), options=options), None
    except Exception as err:  # noqa: BLE001 - any failure to start the browser is a reason to skip
        return None, f"chromium did not start: {str(err).splitlines()[0]}"


def test_web_page_speaks_in_a_real_browser(server, voice, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, reason = _browser()
    if browser is None:
        pytest.skip(reason)
    try:
        browser.get(server["base"] + "/")
        key = browser.find_element(By.ID, "key")
        key.send_keys(KEY)
        browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
        WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#voice option"))
        text = browser.find_element(By.ID, "text")
        text.clear()
        text.send_keys("Hello from the browser. A second sentence.")
        browser.find_element(By.ID, "vocoder").send_keys("griffinlim")
        browser.find_element(By.ID, "speak").click()
        WebDriverWait(browser, 60).until(
            lambda b: b.execute_script("return document.getElementById('player').duration > 0"))
        duration = browser.execute_script("return document.getElementById('player').duration")
        browser.execute_script("document.getElementById('player').play()")  # playable: time moves on
        WebDriverWait(browser, 20).until(
            lambda b: b.execute_script("return document.getElementById('player').currentTime > 0"))
        browser.save_screenshot(str(tmp_path / "page.png"))
        if os.environ.get("TTS_SCREENSHOT"):
            browser.save_screenshot(os.environ["TTS_SCREENSHOT"])
        status = browser.find_element(By.ID, "status").text
    finally:
        browser.quit()
    expected = expected_samples(voice, "Hello from the browser. A second sentence.") / RATE
    assert abs(duration - expected) < 0.01 and status.startswith("done")
