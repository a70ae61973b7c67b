#!/usr/bin/env python3
"""Memory under bursts of large requests: does the gateway give memory back?

Starts `protogate serve --mock` on the bundled example, sends ROUNDS rounds of
CONCURRENCY concurrent CreateBook requests of about 3.4 MiB each (330,000
authors: the request, its echo and the JSON answer are all large), and prints
the gateway's RSS after each round, its peak, and its RSS after IDLE seconds.

    bench/memory.py [path/to/protogate]     # default: target/release/protogate

A benchmark, not a test: the figures depend on the allocator and the machine.
Measured on this project's 2-core machine (debug build; the allocator is what
matters): glibc malloc peaked at 376 MiB and kept 336 MiB after 5 s idle;
mimalloc 257 / 233 MiB; jemalloc with background purging (what protogate
ships) 194 MiB peak and back to 28 MiB, its starting RSS, after idle.
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

ROUNDS, CONCURRENCY, IDLE, PORT = 5, 4, 5, 18190
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/release/protogate")
if not os.path.exists(binary):
    sys.exit(f"{binary} not found: cargo build --release --bin protogate")

gateway = subprocess.Popen(
    [binary, "serve", "--mock", "--listen", f"127.0.0.1:{PORT}", "--watch", "false",
     "--descriptors", os.path.join(root, "descriptors")],
    env=dict(os.environ, RUST_LOG="warn"), stderr=subprocess.DEVNULL)


def mib(key):
    status = open(f"/proc/{gateway.pid}/status").read()
    return int(re.search(key + r":\s+(\d+)", status).group(1)) // 1024


def create_book(body):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/v1/shelves/1/books", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()


try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/shelves/1", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    body = json.dumps({"title": "x", "authors": ["a%d" % i for i in range(330_000)]}).encode()
    print(f"request body: {len(body) / 2**20:.1f} MiB, {CONCURRENCY} at once, {ROUNDS} rounds")
    print(f"start: RSS {mib('VmRSS')} MiB")
    for n in range(ROUNDS):
        threads = [threading.Thread(target=create_book, args=(body,)) for _ in range(CONCURRENCY)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(f"round {n}: RSS {mib('VmRSS')} MiB, peak {mib('VmHWM')} MiB")
    time.sleep(IDLE)
    print(f"after {IDLE} s idle: RSS {mib('VmRSS')} MiB, peak {mib('VmHWM')} MiB")
finally:
    gateway.kill()
