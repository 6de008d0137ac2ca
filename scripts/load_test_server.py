"""Load test of `tts serve` on loopback: 200 requests from 16 clients (bounded), every answer checked.

Builds a small random-weights voice from the tiny recipe (its sentences always run to their length
bound, so every answer's length is known exactly), starts the server on a free port with a queue
large enough for all clients, and sends texts of 1 to 4 sentences as streamed pcm. Counts lost or
failed requests and answers of the wrong length, and samples the server's memory as it goes.
The last line is JSON.

    python scripts/load_test_server.py                    # 200 requests, 16 clients
    python scripts/load_test_server.py --requests 400 --clients 32 --vocoder wavenet
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from bench_server import Server, percentile, request

# The tiny recipe at 8 kHz with 20 mels and a 64-sample hop, its stop token unreachable: every
# chunk lasts 1 frame per symbol plus 4.
VOICE_SETTINGS = [
    "data.root=unused", "audio.sample_rate=8000", "audio.n_fft=256", "audio.win_length=256", "audio.hop_length=64",
    "audio.n_mels=20", "audio.f_max=4000", "vocoder.upsample_scales=[4,4,4]", "acoustic.max_frames_per_symbol=1.0",
    "acoustic.max_frames_margin=4", "acoustic.stop_threshold=1.0", "acoustic.reduction=4",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--vocoder", default="griffinlim")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()

    from tts.config import load_recipe
    from tts.synth import split_text
    from tts.voice import Voice, write_untrained_voice

    with tempfile.TemporaryDirectory() as tmp:
        voice_dir = write_untrained_voice(Path(tmp) / "tiny", load_recipe("tiny", VOICE_SETTINGS))
        voice = Voice.load(voice_dir, device="cpu", vocoder=False)
        texts = [" ".join(f"Request {k} sentence {s} for the load test." for s in range(1 + k % 4))
                 for k in range(args.requests)]

        def expected(text: str) -> int:
            chunks = split_text(text)
            return sum((len(voice.encode(c)) + 4) * 64 for c in chunks) + (len(chunks) - 1) * 2400

        lengths = [expected(t) for t in texts]
        server_args = ["--voice", str(voice_dir), "--device", "cpu", "--max-queue", str(args.clients + 4),
                       "--timeout", "600"]
        with Server(server_args) as server:
            request(server.base, {"input": "Warm up.", "response_format": "pcm", "vocoder": args.vocoder}, 8000)
            memory = [server.rss_mb()]
            results: dict[int, dict] = {}
            lock = threading.Lock()
            next_index = [0]
            stop_at = time.monotonic() + args.max_seconds

            def client() -> None:
                while time.monotonic() < stop_at:
                    with lock:
                        k = next_index[0]
                        if k >= len(texts):
                            return
                        next_index[0] += 1
                    try:
                        result = request(server.base, {"input": texts[k], "response_format": "pcm",
                                                       "vocoder": args.vocoder}, 8000)
                    except Exception as err:  # noqa: BLE001 - counted as lost
                        result = {"status": None, "error": str(err), "samples": 0, "latency": None, "ttfa": None}
                    with lock:
                        results[k] = result
                        if len(results) % 25 == 0:
                            memory.append(server.rss_mb())

            began = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - began
            time.sleep(1.0)
            memory.append(server.rss_mb())
    ok = [k for k, r in results.items() if r["status"] == 200]
    wrong = [k for k in ok if results[k]["samples"] != lengths[k]]
    summary = {"requests": args.requests, "clients": args.clients, "answered": len(results), "ok": len(ok),
               "lost": args.requests - len(ok), "wrong_length": len(wrong),
               "p50_latency_s": round(percentile([results[k]["latency"] for k in ok], 0.5), 3),
               "p95_latency_s": round(percentile([results[k]["latency"] for k in ok], 0.95), 3),
               "p95_ttfa_s": round(percentile([results[k]["ttfa"] for k in ok], 0.95), 3),
               "wall_s": round(wall, 1), "server_rss_mb": [round(m) for m in memory]}
    print(f"{summary['ok']}/{args.requests} ok, {summary['wrong_length']} of the wrong length, "
          f"{summary['lost']} lost in {summary['wall_s']} s; server memory (MB) {summary['server_rss_mb']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
