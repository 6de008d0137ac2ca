"""`tts serve` settings: one frozen dataclass, its command-line options, and the bind-safety rule.

Importing this module loads nothing heavy (the CLI builds its --help from it).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

from tts.errors import TTSError
from tts.synth import MAX_CHARS, VOCODERS
from tts.text.frontend import Frontend

NORMALIZERS = Frontend.NORMALIZERS

DEFAULT_PORT = 5002
DEFAULT_WYOMING_PORT = 10200


class ServerError(TTSError):
    """A server setting that cannot be used; one line for the user."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """What `tts serve` takes. Voices are read only from ``voices`` (directories named at start-up;
    empty: the shipped default voice); a request names a voice, never a path."""

    voices: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    wyoming: Optional[str] = None  # tcp://HOST:PORT
    api_key: Optional[str] = None
    insecure: bool = False
    device: Optional[str] = None
    vocoder: str = "auto"  # a request's vocoder when it names none
    normalizer: str = "builtin"  # tts.text.Frontend's: builtin or nemo
    batch_size: int = 8  # chunks per model call, across requests
    batch_wait: float = 0.005  # seconds the worker waits for more requests to fill a batch
    vocoder_threads: int = max(1, min(8, os.cpu_count() or 1))  # beside the one acoustic thread
    torch_threads: int = 1  # torch's intra-op threads (process-wide), per stage thread
    max_chars: int = MAX_CHARS  # longest chunk handed to the acoustic model
    max_text: int = 5000  # characters per request
    max_queue: int = 32  # requests waiting or in progress; more get 503 with Retry-After
    timeout: float = 120.0  # seconds a request may take from arrival to its last audio
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ServerError(f"--port must be between 0 and 65535, got {self.port}")
        if not is_loopback(self.host) and not self.api_key and not self.insecure:
            raise ServerError(f"--host {self.host} is reachable from other machines: give --api-key KEY "
                              f"(clients send 'Authorization: Bearer KEY'), or --insecure to serve without one")
        if self.wyoming is not None:
            wyoming_host, _ = parse_tcp_uri(self.wyoming)
            if not is_loopback(wyoming_host) and not self.insecure:
                raise ServerError(f"--wyoming {self.wyoming}: the Wyoming protocol has no authentication; "
                                  f"binding it beyond this machine needs --insecure")
        if self.vocoder not in VOCODERS:
            raise ServerError(f"unknown vocoder {self.vocoder!r}; use {', '.join(VOCODERS)}")
        if self.normalizer not in NORMALIZERS:
            raise ServerError(f"unknown normalizer {self.normalizer!r}; use {', '.join(NORMALIZERS)}")
        for name, value, low in (("--batch-size", self.batch_size, 1), ("--max-text", self.max_text, 1),
                                 ("--max-queue", self.max_queue, 1), ("--max-chars", self.max_chars, 20),
                                 ("--vocoder-threads", self.vocoder_threads, 1),
                                 ("--torch-threads", self.torch_threads, 1)):
            if value < low:
                raise ServerError(f"{name} must be at least {low}, got {value}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ServerError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if not (math.isfinite(self.batch_wait) and 0 <= self.batch_wait <= 1):
            raise ServerError(f"--batch-wait must be between 0 and 1 second, got {self.batch_wait}")
        if "*" in self.cors_origins:
            raise ServerError("--cors-origin '*' would let every web page use this server; name the origins")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ServerSettings":
        return cls(voices=tuple(args.voice or ()), host=args.host, port=args.port, wyoming=args.wyoming,
                   api_key=args.api_key, insecure=args.insecure, device=args.device, vocoder=args.vocoder,
                   normalizer=args.normalizer,
                   batch_size=args.batch_size, batch_wait=args.batch_wait_ms / 1000.0,
                   vocoder_threads=cls.vocoder_threads if args.vocoder_threads is None else args.vocoder_threads,
                   torch_threads=args.torch_threads,
                   max_chars=args.max_chars,
                   max_text=args.max_text, max_queue=args.max_queue, timeout=args.timeout,
                   cors_origins=tuple(args.cors_origin or ()))


def parse_tcp_uri(uri: str) -> tuple[str, int]:
    parsed = urlparse(uri)
    if parsed.scheme != "tcp" or not parsed.hostname or parsed.port is None:
        raise ServerError(f"--wyoming {uri}: expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:{DEFAULT_WYOMING_PORT}")
    return parsed.hostname, parsed.port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tts serve`."""
    parser.add_argument("--voice", action="append", metavar="DIR",
                        help="a voice or training run directory to serve (repeat for several; its name is the "
                             "directory's name; default: the shipped voice)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--wyoming", metavar="tcp://HOST:PORT",
                        help=f"also speak the Wyoming protocol (Home Assistant), e.g. tcp://127.0.0.1:{DEFAULT_WYOMING_PORT}")
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on every API request")
    parser.add_argument("--insecure", action="store_true", help="allow binding beyond loopback without an API key")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--vocoder", choices=VOCODERS, default="auto",
                        help="vocoder of requests that name none (auto: the voice card's preference)")
    parser.add_argument("--normalizer", choices=NORMALIZERS, default="builtin",
                        help="how written forms are read: builtin (default) or nemo (NVIDIA NeMo's grammars; "
                             "pip install \"tts[nemo]\"; docs/frontend.md)")
    parser.add_argument("--batch-size", type=int, default=8, help="sentences per model call, across requests (default 8)")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0,
                        help="how long the worker waits for more sentences to fill a batch (default 5)")
    parser.add_argument("--vocoder-threads", type=int, default=None,
                        help="threads vocoding beside the Tacotron thread: Griffin-Lim sentences run in parallel "
                             "(default: one per core, at most 8)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch's threads per model call (default 1: the stages already run side by side; "
                             "2 made one client faster and 8 clients no faster for more CPU, docs/server.md)")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS, help=f"longest chunk (default {MAX_CHARS})")
    parser.add_argument("--max-text", type=int, default=5000, help="characters per request (default 5000)")
    parser.add_argument("--max-queue", type=int, default=32,
                        help="requests queued or in progress; more get 503 with Retry-After (default 32)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                        help="let web pages from this origin call the API (repeat; default: none)")
