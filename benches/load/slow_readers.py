#!/usr/bin/env python3
"""Holds N concurrent downloads that read slowly, for a fixed time, then closes them all.

usage: slow_readers.py HOST PORT PATH N SECONDS READ_BYTES_PER_SECOND
Prints 'connected N' once all connections have their response headers, then 'done'.
Loopback only: refuses any host other than 127.0.0.1 / ::1 / localhost.
"""
import asyncio
import sys


async def reader(host, port, path, seconds, rate, ready):
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slow-reader\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    ok = head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.1 206")
    ready.append(ok)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        chunk = await r.read(rate // 4 or 1)
        if not chunk:
            break
        await asyncio.sleep(0.25)
    w.close()
    return ok


async def main():
    host, port, path, n, seconds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("loopback only")
    ready = []
    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(reader(host, port, path, seconds, rate, ready)))
        await asyncio.sleep(0.001)
    while len(ready) < n and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    print(f"connected {sum(ready)}", flush=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = sum(1 for x in results if x is not True)
    print(f"done failed={failed}", flush=True)


asyncio.run(main())
