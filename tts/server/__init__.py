"""`tts serve`: a speech server on the one inference path (tts.synth).

- tts.server.settings  ServerSettings and the command-line options (no heavy imports)
- tts.server.worker    the one thread that owns the models: queue, cross-request batching, streaming
- tts.server.http      FastAPI app: web page, OpenAI-style /v1/audio/speech, /api/tts, /health, /metrics
- tts.server.wyoming   the Wyoming protocol (describe, synthesize) for Home Assistant
- tts.server.run       starts the worker, uvicorn and the Wyoming listener in one event loop

Needs the server extra (pip install "tts[server]"): fastapi, uvicorn, wyoming, prometheus-client.
"""

from tts.server.settings import ServerError, ServerSettings


def serve(settings: ServerSettings) -> None:
    """Run the server until interrupted."""
    from tts.server.run import serve as _serve

    _serve(settings)


__all__ = ["ServerError", "ServerSettings", "serve"]
