"""Start `tts serve`: the worker thread, uvicorn and (optionally) the Wyoming listener, in one
event loop; Ctrl-C or SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys

from tts.server.settings import ServerError, ServerSettings, parse_tcp_uri

log = logging.getLogger(__name__)


def _imports():
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
        import wyoming  # noqa: F401
    except ImportError as err:
        raise ServerError(f"tts serve needs the server extra ({err.name} is missing): "
                          f"pip install \"tts[server]\"") from None
    return uvicorn


def serve(settings: ServerSettings) -> None:
    uvicorn = _imports()
    from pathlib import Path

    from tts.server.http import Metrics, create_app
    from tts.server.worker import Worker

    for path in settings.voices:  # a missing directory is a mistake to report before binding
        if not Path(path).is_dir():
            raise ServerError(f"--voice {path}: no such directory")
    names = [Path(p).resolve().name for p in settings.voices]
    if len(set(names)) != len(names):
        raise ServerError(f"two --voice directories share a name ({', '.join(names)}); voices are named by directory")
    import torch

    torch.set_num_threads(settings.torch_threads)  # process-wide: every stage thread gets this many
    metrics = Metrics()
    worker = Worker(settings, metrics)
    app = create_app(settings, worker, metrics)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    worker.start()

    async def main() -> None:
        tasks = [asyncio.create_task(server.serve())]
        wyoming_server = None
        if settings.wyoming:
            from wyoming.server import AsyncTcpServer

            from tts.server.wyoming import Handler

            host, port = parse_tcp_uri(settings.wyoming)
            wyoming_server = AsyncTcpServer(host, port)
            # start(), not run(): run() takes over SIGTERM, and uvicorn would never hear it
            await wyoming_server.start(functools.partial(Handler, service=app.state.service))
        while not server.started and not tasks[0].done():
            await asyncio.sleep(0.05)
        if server.started:
            where = f"http://{settings.host}:{settings.port}"
            extra = f", Wyoming on {settings.wyoming}" if settings.wyoming else ""
            print(f"tts serve: listening on {where}{extra} (voices load in the background; GET /health)",
                  file=sys.stderr, flush=True)
        await tasks[0]  # uvicorn returns on Ctrl-C / SIGTERM
        if wyoming_server is not None:
            await wyoming_server.stop()

    try:
        asyncio.run(main())
    finally:
        worker.stop()
