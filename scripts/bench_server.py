"""Benchmark `tts serve` on loopback: N concurrent clients, bounded in requests and time.

Starts the server in a subprocess on a free port, warms it up, then for each client count runs
that many clients, each sending requests one after another (a 5-sentence paragraph, streamed pcm)
until ``--seconds`` have passed or it has sent ``--requests``, and reports p50/p95 latency, p50/p95
time to first audio, aggregate audio seconds per second and the server's CPU seconds per audio
second (what it costs, whatever else shares the cores). The throughput is the audio that arrived
inside the sending window, over the window: the requests still streaming when it closes are
finished and checked but their later audio is not counted, so the count's last requests (fewer
clients busy than the count) do not weigh on it. ``completed_audio_s_per_s`` is the older figure,
all the audio of the finished requests over the whole wall time, ramp-down included.
The last line is JSON.

    python scripts/bench_server.py                       # the shipped voice, 1 and 8 clients
    python scripts/bench_server.py --clients 1,8,1,8     # interleaved: the machine's other load falls on both
    python scripts/bench_server.py --clients 1,4,8 --seconds 30 --voice runs/lj --vocoder wavenet
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

PARAGRAPH = ("The library opens at nine in the morning. Visitors may borrow up to five books at a time. "
             "The reading room on the second floor is kept quiet. Children's stories are read aloud on Saturdays. "
             "Please return every book before the end of the month.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tts serve` in a subprocess on a free loopback port; stopped on exit."""

    def __init__(self, args: list[str], *, timeout: float = 300.0):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "tts.cli", "serve", "--port", str(self.port), *args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the server did not become healthy in time")
            time.sleep(0.25)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds the server has used (user + system, all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stage_cpu(base: str) -> dict:
    """The server's tts_stage_cpu_seconds_total by stage (the worker's model calls)."""
    text = httpx.get(base + "/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("tts_stage_cpu_seconds_total{"):
            found[line.split('stage="', 1)[1].split('"', 1)[0]] = float(line.split()[-1])
    return found


def request(base: str, body: dict, rate: int) -> dict:
    """One streamed request -> {"status", "latency", "ttfa", "samples", "seconds", "arrivals"}, where
    arrivals are (perf_counter, bytes) of each piece of the body."""
    began = time.perf_counter()
    first = None
    arrivals = []
    size = 0
    with httpx.stream("POST", base + "/v1/audio/speech", json=body, timeout=600) as response:
        for piece in response.iter_raw():
            if first is None and piece:
                first = time.perf_counter() - began
            arrivals.append((time.perf_counter(), len(piece)))
            size += len(piece)
        status = response.status_code
    ok = status == 200
    return {"status": status, "latency": time.perf_counter() - began, "ttfa": first,
            "samples": size // 2 if ok else 0, "seconds": size / 2 / rate if ok else 0,
            "arrivals": arrivals if ok else []}


def run_clients(base: str, clients: int, requests: int, body_for, rate: int, seconds: float) -> list[dict]:
    """Each client sends until ``seconds`` have passed since the start or it has sent ``requests``."""
    results: list[dict] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(n: int) -> None:
        for k in range(requests):
            if time.perf_counter() > stop_at:
                return
            result = request(base, body_for(n, k), rate)
            result["client"] = n
            with lock:
                results.append(result)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", help="voice directory (default: the shipped voice)")
    parser.add_argument("--vocoder", default="auto")
    parser.add_argument("--clients", default="1,8", help="client counts to measure, comma-separated")
    parser.add_argument("--requests", type=int, default=50, help="at most this many requests per client")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="each count's sending window: clients start no request after it (default 15)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vocoder-threads", type=int, help="the server's --vocoder-threads (default: its own)")
    parser.add_argument("--torch-threads", type=int, help="the server's --torch-threads (default: its own)")
    args = parser.parse_args()
    server_args = ["--device", "cpu", "--batch-size", str(args.batch_size), "--max-queue", "64", "--timeout", "600"]
    if args.voice:
        server_args += ["--voice", args.voice]
    for option in ("vocoder_threads", "torch_threads"):
        if getattr(args, option) is not None:
            server_args += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    rows = []
    with Server(server_args) as server:
        voices = httpx.get(server.base + "/v1/voices", timeout=10).json()["voices"]
        rate = voices[0]["sample_rate"]
        body = {"input": PARAGRAPH, "response_format": "pcm", "vocoder": args.vocoder}
        # warm-up (lexicon, kernels), and the length to expect: a trained Tacotron's stop frame may move
        # by a frame or two with the batch it runs in, so an answer counts when it has 90% of it
        expected = request(server.base, body, rate)["samples"]
        for clients in [int(c) for c in args.clients.split(",")]:
            began, cpu, stages = time.perf_counter(), server.cpu_s(), stage_cpu(server.base)
            own = time.process_time()  # the clients share the machine with the server: what they cost
            results = run_clients(server.base, clients, args.requests, lambda n, k: body, rate, args.seconds)
            wall, cpu, own = time.perf_counter() - began, server.cpu_s() - cpu, time.process_time() - own
            window = min(args.seconds, wall)
            inside = sum(size for r in results for at, size in r["arrivals"] if at <= began + window)
            stages = {name: value - stages.get(name, 0.0) for name, value in stage_cpu(server.base).items()}
            ok = [r for r in results if r["status"] == 200 and r["samples"] >= 0.9 * expected]
            audio = sum(r["seconds"] for r in ok)
            row = {"clients": clients, "requests": len(results), "ok": len(ok), "audio_s": round(audio, 2),
                   "p50_latency_s": round(percentile([r["latency"] for r in ok], 0.5), 3),
                   "p95_latency_s": round(percentile([r["latency"] for r in ok], 0.95), 3),
                   "p50_ttfa_s": round(percentile([r["ttfa"] for r in ok], 0.5), 3),
                   "p95_ttfa_s": round(percentile([r["ttfa"] for r in ok], 0.95), 3),
                   "audio_s_per_s": round(inside / 2 / rate / window, 3),
                   "window_s": round(window, 3), "window_audio_s": round(inside / 2 / rate, 3),
                   "completed_audio_s_per_s": round(audio / wall, 3),
                   "server_cpu_s_per_audio_s": round(cpu / audio, 4) if audio else None,
                   "client_cpu_s_per_audio_s": round(own / audio, 4) if audio else None,
                   **{f"{name}_cpu_s_per_audio_s": round(value / audio, 4) if audio else None
                      for name, value in sorted(stages.items())},
                   "load_average": round(os.getloadavg()[0], 1),
                   "mean_audio_s": round(statistics.mean(r["seconds"] for r in ok), 3) if ok else None,
                   "wall_s": round(wall, 1), "server_rss_mb": round(server.rss_mb())}
            rows.append(row)
            print(f"{clients:>3} clients: {row['ok']}/{row['requests']} ok, latency p50 {row['p50_latency_s']} s "
                  f"p95 {row['p95_latency_s']} s, first audio p50 {row['p50_ttfa_s']} s p95 {row['p95_ttfa_s']} s, "
                  f"{row['audio_s_per_s']} audio s/s, {row['server_cpu_s_per_audio_s']} server CPU s per audio s "
                  f"(acoustic {row.get('acoustic_cpu_s_per_audio_s')}, vocoder {row.get('vocoder_cpu_s_per_audio_s')}), "
                  f"load average {row['load_average']}", flush=True)
    # a count measured more than once (--clients 1,8,1,8, so that a change in the machine's other
    # load falls on both) is pooled: its audio inside the windows over their length
    pooled, completed = {}, {}
    for count in sorted({row["clients"] for row in rows}):
        same = [row for row in rows if row["clients"] == count]
        pooled[count] = round(sum(row["window_audio_s"] for row in same) / sum(row["window_s"] for row in same), 3)
        completed[count] = round(sum(row["audio_s"] for row in same) / sum(row["wall_s"] for row in same), 3)
    summary = {"rows": rows, "audio_s_per_s_by_clients": pooled, "completed_audio_s_per_s_by_clients": completed,
               "lost": sum(row["requests"] - row["ok"] for row in rows)}
    if len(pooled) > 1:
        summary["speedup_most_vs_fewest_clients"] = round(pooled[max(pooled)] / max(pooled[min(pooled)], 1e-9), 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
