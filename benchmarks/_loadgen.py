"""
Load generator for bench_http.py, run as a separate process so it does not share a GIL
with the server or the benchmark driver.

Usage: python _loadgen.py PORT METHOD PATH BODY_JSON CONCURRENCY SECONDS
Prints one JSON object: {"latencies_ms": [...], "elapsed_s": float, "errors": int}.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def main() -> None:
    port, method, path, body, concurrency, seconds = sys.argv[1:7]
    payload = body.encode() if body != "-" else None
    headers = {"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.77"}
    deadline = time.perf_counter() + float(seconds)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        local: list[float] = []
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
                continue
            local.append((time.perf_counter() - start) * 1000)
        conn.close()
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(int(concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({"latencies_ms": latencies, "elapsed_s": elapsed, "errors": errors[0]}))


if __name__ == "__main__":
    main()
