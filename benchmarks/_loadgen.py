"""
Load generator for bench_http.py, run as a separate process so it does not share a GIL
with the server or the benchmark driver.

Usage: python _loadgen.py PORT METHOD PATH BODY_JSON CONCURRENCY SECONDS [RATE]

Without RATE (or RATE 0) it is a closed loop: CONCURRENCY connections each send the next
request as soon as the previous answer arrived, so the server runs saturated and the
figures measure throughput. With RATE it is an open loop: request i is due at
``start + i / RATE`` and is sent by the next free connection; its latency counts from when
it was due, not when it was sent, so a slow server cannot hide its queueing by slowing the
client down (coordinated omission).

Prints one JSON object: {"latencies_ms": [...], "elapsed_s": float, "errors": int}.
"""

from __future__ import annotations

import http.client
import itertools
import json
import sys
import threading
import time


def main() -> None:
    port, method, path, body, concurrency, seconds = sys.argv[1:7]
    rate = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0  # optional
    payload = body.encode() if body != "-" else None
    headers = {"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.77"}
    started = time.perf_counter()
    deadline = started + float(seconds)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    slots = itertools.count()  # next due request (open loop); next() is atomic under the GIL

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        local: list[float] = []
        while True:
            if rate > 0:
                due = started + next(slots) / rate
                if due >= deadline:
                    break
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            else:
                due = time.perf_counter()
                if due >= deadline:
                    break
            try:
                conn.request(method, path, body=payload, headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
                continue
            local.append((time.perf_counter() - due) * 1000)
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(int(concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({"latencies_ms": latencies, "elapsed_s": elapsed, "errors": errors[0]}))


if __name__ == "__main__":
    main()
