"""The HTTP side of `tts serve` (FastAPI): the web page, OpenAI's /v1/audio/speech, Coqui's and
Piper's /api/tts, voices and models, /health and /metrics.

Every bad request gets a 4xx with OpenAI's error shape, {"error": {"message", "type", "param",
"code"}}; a full queue 503 with Retry-After; a request past the time limit before its first audio
504 (after it, the stream ends early). A client that goes away cancels its job: its remaining
sentences are never synthesized.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from importlib import resources
from typing import AsyncIterator, Optional

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tts.errors import TTSError
from tts.server import audio
from tts.server.settings import ServerSettings
from tts.server.worker import Job, RequestTimeout, ServerBusy, Worker, job_settings
from tts.synth import SPEED_RANGE, VOCODERS

log = logging.getLogger(__name__)

MODELS = ("tts", "tts-1", "tts-1-hd")  # OpenAI clients send their own model names; all mean the one path
SPEECH_FIELDS = {"model", "input", "voice", "response_format", "speed", "seed", "vocoder", "sentence_silence",
                 "instructions", "stream_format"}
# Piper's HTTP server (POST / with a JSON body): its speaker and noise fields have no meaning for a
# single-speaker Tacotron and are accepted as Piper's clients send them; length_scale is 1 / speed.
PIPER_FIELDS = {"text", "voice", "speaker", "speaker_id", "length_scale", "noise_scale", "noise_w_scale"}
RETRY_AFTER_S = 1


class RequestError(TTSError):
    """A bad request: status and OpenAI-style error fields."""

    def __init__(self, message: str, *, status: int = 400, param: Optional[str] = None,
                 kind: str = "invalid_request_error", headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.param, self.kind, self.headers = status, param, kind, headers or {}


class Metrics:
    """Prometheus metrics of one server, in their own registry (no process-wide state)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("tts_requests", "Requests by endpoint and status", ["endpoint", "status"],
                                registry=self.registry)
        buckets = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
        self.latency = Histogram("tts_request_seconds", "Time from arrival to the last audio", ["endpoint"],
                                 buckets=buckets, registry=self.registry)
        self.first_audio = Histogram("tts_time_to_first_audio_seconds", "Time from arrival to the first audio",
                                     ["endpoint"], buckets=buckets, registry=self.registry)
        self.queue_depth = Gauge("tts_queue_depth", "Requests waiting or in progress", registry=self.registry)
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio sent", registry=self.registry)
        self.sentences = Counter("tts_sentences", "Sentences synthesized", registry=self.registry)
        self.batch_sentences = Histogram("tts_batch_sentences", "Sentences per model batch",
                                         buckets=(1, 2, 4, 8, 16, 32), registry=self.registry)
        self.cancelled = Counter("tts_cancelled", "Requests dropped because the client went away",
                                 registry=self.registry)
        self.stage_cpu = Counter("tts_stage_cpu_seconds", "CPU time of the worker's model calls by stage, "
                                 "on the calling thread (acoustic: Tacotron and the speed change; vocoder; "
                                 "extra torch or Numba threads not counted)", ["stage"], registry=self.registry)


def _error_body(message: str, *, kind: str = "invalid_request_error", param: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _number(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{name} must be a number between {low} and {high}, got {value!r}", param=name)
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}, got {value}", param=name)
    return float(value)


class Service:
    """What the endpoints and the Wyoming handler share: checking a request and running its job."""

    def __init__(self, settings: ServerSettings, worker: Worker, metrics: Metrics):
        self.settings, self.worker, self.metrics = settings, worker, metrics

    def voice_names(self) -> list[str]:
        return list(self.worker.voices)

    def describe_voices(self) -> list[dict]:
        return [{"name": name, "sample_rate": voice.sample_rate, "language": "en-US",
                 "vocoders": sorted(voice.vocoders),
                 "default_vocoder": voice.vocoder_named("auto").name,
                 "formats": audio.available(voice.sample_rate)}
                for name, voice in self.worker.voices.items()]

    def resolve_voice(self, name: Optional[str]) -> str:
        if self.worker.load_error is not None:
            raise RequestError(f"the server could not load its voices: {self.worker.load_error}", status=503,
                               kind="server_error")
        if not self.worker.ready.is_set():
            raise RequestError("the server is still loading its voices; retry in a moment", status=503,
                               kind="server_error", headers={"Retry-After": str(RETRY_AFTER_S)})
        names = self.voice_names()
        if name in (None, "") and len(names) == 1:
            return names[0]
        if name not in names:  # a name, never a path: only voices named at start-up exist
            raise RequestError(f"unknown voice {name!r}; this server has {', '.join(names)}", param="voice")
        return name

    async def start(self, *, text, voice: Optional[str], vocoder: Optional[str] = None, seed=None,
                    speed=1.0, sentence_silence=0.3) -> tuple[Job, list[str]]:
        """Check a request, queue its job and wait until it is planned -> (job, sentences)."""
        if not isinstance(text, str):
            raise RequestError("input must be a string", param="input")
        if not text.strip():
            raise RequestError("the text is empty", param="input")
        if len(text) > self.settings.max_text:
            raise RequestError(f"the text is {len(text)} characters; this server takes at most "
                               f"{self.settings.max_text}", param="input")
        name = self.resolve_voice(voice)
        if vocoder is not None and vocoder not in VOCODERS:
            raise RequestError(f"unknown vocoder {vocoder!r}; use {', '.join(VOCODERS)}", param="vocoder")
        if vocoder is not None and vocoder not in ("auto", *self.worker.voices[name].vocoders):
            raise RequestError(f"voice {name!r} has no {vocoder} vocoder; use vocoder griffinlim", param="vocoder")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise RequestError(f"seed must be an integer between 0 and {2**63 - 1}, got {seed!r}", param="seed")
        speed = _number("speed", speed, *SPEED_RANGE)
        sentence_silence = _number("sentence_silence", sentence_silence, 0.0, 10.0)
        settings = job_settings(self.settings, vocoder=vocoder, seed=seed, speed=speed,
                                sentence_silence=sentence_silence)
        loop = asyncio.get_running_loop()
        job = Job(voice=name, text=text, settings=settings, deadline=time.monotonic() + self.settings.timeout,
                  loop=loop)
        try:
            self.worker.submit(job)
        except ServerBusy as err:
            raise RequestError(str(err), status=503, kind="server_error",
                               headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        kind, value = await self._next(job)
        if kind == "error":
            if isinstance(value, RequestTimeout):
                raise RequestError(str(value), status=504, kind="server_error")
            raise RequestError(str(value).splitlines()[0] if str(value) else type(value).__name__, param="input")
        return job, value

    async def _next(self, job: Job) -> tuple:
        remaining = job.deadline - time.monotonic()
        try:
            return await asyncio.wait_for(job.events.get(), timeout=max(0.0, remaining) + 1.0)
        except asyncio.TimeoutError:
            job.cancel()
            return "error", RequestTimeout(f"the request ran past the server's limit of {self.settings.timeout:g} s")

    async def audio(self, job: Job, endpoint: str) -> AsyncIterator[np.ndarray]:
        """The job's float32 pieces in order; cancels the job when the consumer stops early."""
        first = True
        finished = False
        try:
            while True:
                kind, value = await self._next(job)
                if kind == "audio":
                    if first:
                        self.metrics.first_audio.labels(endpoint).observe(time.monotonic() - job.arrived)
                        first = False
                    self.metrics.audio_seconds.inc(len(value) / self.worker.voices[job.voice].sample_rate)
                    yield value
                elif kind == "done":
                    finished = True
                    self.metrics.latency.labels(endpoint).observe(time.monotonic() - job.arrived)
                    return
                else:  # an error after the audio began: the stream can only end early
                    log.warning("tts serve: a request ended early: %s", value)
                    return
        finally:
            if not finished and not job.cancelled:
                self.metrics.cancelled.inc()
            if not finished:
                job.cancel()


def create_app(settings: ServerSettings, worker: Worker, metrics: Metrics) -> FastAPI:
    service = Service(settings, worker, metrics)
    app = FastAPI(title="tts serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    open_paths = {("GET", "/"), ("GET", "/health")}  # the page and the probe; POST / is Piper's API

    @app.middleware("http")
    async def authorize(request: Request, call_next):
        endpoint = request.url.path
        if settings.api_key and (request.method, endpoint) not in open_paths and request.method != "OPTIONS":
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
                metrics.requests.labels(endpoint, "401").inc()
                return JSONResponse(_error_body("missing or wrong API key: send 'Authorization: Bearer KEY'",
                                                kind="authentication_error"), status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        response = await call_next(request)
        if endpoint != "/metrics":
            metrics.requests.labels(endpoint if response.status_code != 404 else "other",
                                    str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError):
        return JSONResponse(_error_body(str(err), kind=err.kind, param=err.param), status_code=err.status,
                            headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return JSONResponse(_error_body(f"{where or 'request'}: {first.get('msg', 'invalid')}", param=where or None),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException):
        return JSONResponse(_error_body(str(err.detail)), status_code=err.status_code)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(resources.files("tts.server").joinpath("static/index.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        if worker.load_error is not None:
            return JSONResponse({"status": "failed", "error": worker.load_error}, status_code=503)
        if not worker.ready.is_set():
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        return {"status": "ok", "voices": service.voice_names(), "queue": worker.depth}

    @app.get("/metrics")
    async def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        metrics.queue_depth.set(worker.depth)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "tts"}
                                           for m in MODELS]}

    @app.get("/v1/voices")
    @app.get("/api/voices")
    async def voices():
        if not worker.ready.is_set():
            service.resolve_voice(None)  # 503 while the voices load
        return {"voices": service.describe_voices()}

    async def json_object(request: Request, fields: set) -> dict:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            raise RequestError(f"the body is not valid JSON ({err})") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        unknown = sorted(set(body) - fields)
        if unknown:
            raise RequestError(f"unknown field(s): {', '.join(unknown)}", param=unknown[0])
        return body

    @app.post("/")
    async def piper(request: Request):
        # Piper's HTTP API, for its existing clients: a complete wav
        body = await json_object(request, PIPER_FIELDS)
        if "text" not in body:
            raise RequestError("missing field 'text' (the text to speak)", param="text")
        length_scale = _number("length_scale", body.get("length_scale", 1.0), 1 / SPEED_RANGE[1], 1 / SPEED_RANGE[0])
        return await _speak(request, "/", "wav", text=body["text"], voice=body.get("voice"), vocoder=None, seed=None,
                            speed=1.0 / length_scale, sentence_silence=0.3, whole=True)

    @app.post("/v1/audio/speech")
    async def speech(request: Request):
        body = await json_object(request, SPEECH_FIELDS)
        if "input" not in body:
            raise RequestError("missing field 'input' (the text to speak)", param="input")
        model = body.get("model", "tts")
        if model not in MODELS:
            raise RequestError(f"unknown model {model!r}; use one of {', '.join(MODELS)}", param="model")
        stream_format = body.get("stream_format", "audio")
        if stream_format != "audio":  # OpenAI's "sse" wraps base64 audio in events; a client that asks wants them
            raise RequestError(f"stream_format {stream_format!r} is not served; use 'audio' (the body is the "
                               f"audio itself, streamed as it is made)", param="stream_format")
        if not isinstance(body.get("instructions", ""), str):
            raise RequestError("instructions must be a string (this voice speaks one way and ignores them)",
                               param="instructions")
        fmt = body.get("response_format", "wav")
        return await _speak(request, "/v1/audio/speech", fmt, text=body["input"], voice=body.get("voice"),
                            vocoder=body.get("vocoder"), seed=body.get("seed"), speed=body.get("speed", 1.0),
                            sentence_silence=body.get("sentence_silence", 0.3))

    @app.get("/api/tts")
    async def api_tts(request: Request, text: str = "", voice: Optional[str] = None, vocoder: Optional[str] = None,
                      seed: Optional[int] = None, speed: float = 1.0):
        # Coqui's and Piper's servers answer a complete wav; their clients expect one.
        return await _speak(request, "/api/tts", "wav", text=text, voice=voice, vocoder=vocoder, seed=seed,
                            speed=speed, sentence_silence=0.3, whole=True)

    async def _speak(request: Request, endpoint: str, fmt, *, whole: bool = False, **options) -> Response:
        name = service.resolve_voice(options.pop("voice"))
        rate = worker.voices[name].sample_rate
        if not isinstance(fmt, str) or fmt not in audio.available(rate):
            raise RequestError(f"unknown or unavailable response_format {fmt!r}; this server writes "
                               f"{', '.join(audio.available(rate))}", param="response_format")
        job, sentences = await service.start(voice=name, **options)
        encoding = audio.ENCODINGS[fmt]
        headers = {"X-Sample-Rate": str(rate), "X-Sentences": str(len(sentences)), "Cache-Control": "no-store"}
        if whole or not encoding.streamed:
            pieces = [piece async for piece in service.audio(job, endpoint)]
            wav = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            return Response(audio.encode_whole(wav, rate, fmt), media_type=encoding.media_type, headers=headers)

        async def body() -> AsyncIterator[bytes]:
            if fmt == "wav":
                yield audio.wav_header(rate)
            async for piece in service.audio(job, endpoint):
                yield audio.pcm16(piece)

        return StreamingResponse(body(), media_type=encoding.media_type, headers=headers)

    return app
