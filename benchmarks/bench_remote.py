"""Remote execution, measured side by side with its in-process and raw baselines.

Run: python benchmarks/bench_remote.py [--rss-runs 20]

1. wall time of the demo plate through a loopback server ÷ run_local, same
   worker count (goal <= 1.10);
2. well-result latency: server timestamp (taken just before the well's result
   is committed) to the client's on_well callback, p50 / p99 (goal < 20 / 100 ms);
3. stream throughput of full-resolution frames through our protocol (encode,
   PUB/SUB, decode, unpack) ÷ raw pyzmq PUSH/PULL of the same frames (goal >= 0.8);
4. server RSS after N small runs ÷ after 1 (goal ~1.0);
5. bytes of pipeline code ÷ bytes of the dill pickle of the same pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import dill
import numpy as np
import psutil
import zmq

from openhcs_nb import demo_plate, nuclei_count_pipeline, run_local
from openhcs_nb.client import connect
from openhcs_nb.protocol import (
    ArrayPacker,
    WellDone,
    decode_event_frames,
    event_frames,
    event_topic,
    unpack_arrays,
)
from openhcs_nb.server.local import LocalServer

WORKERS = 2


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def wall_times(tmp: Path, repeats: int) -> tuple[float, float, list[float], int]:
    plate = demo_plate()
    pipeline = nuclei_count_pipeline()
    local: list[float] = []
    remote: list[float] = []
    latencies: list[float] = []
    args = [
        "--demo",
        "--port",
        "0",
        "--results",
        str(tmp / "srv"),
        "--workers",
        str(WORKERS),
    ]
    with LocalServer([*args, "--log-level", "WARNING"], tmp / "srvdir") as server:
        conn = connect(server.address)
        for i in range(repeats):
            start = time.perf_counter()
            run_local(pipeline, plate, workers=WORKERS, out=tmp / f"local{i}")
            local.append(time.perf_counter() - start)
            start = time.perf_counter()
            run = conn.submit(pipeline, "demo")
            run.on_well(lambda w: latencies.append(time.time() - w.time))
            run.result()
            remote.append(time.perf_counter() - start)
        conn.close()
    return (
        statistics.median(local),
        statistics.median(remote),
        latencies,
        len(plate.wells),
    )


def rss_growth(tmp: Path, runs: int) -> tuple[float, float, float]:
    args = [
        "--demo",
        "--port",
        "0",
        "--results",
        str(tmp / "rss"),
        "--workers",
        str(WORKERS),
    ]
    with LocalServer([*args, "--log-level", "WARNING"], tmp / "rssdir") as server:
        proc = psutil.Process(server.process.pid)
        conn = connect(server.address)
        after: list[float] = []
        for _ in range(runs):
            conn.submit(
                nuclei_count_pipeline(), "demo", wells=["A01", "B02", "C03", "D04"]
            ).result()
            workers = sum(c.memory_info().rss for c in proc.children(recursive=True))
            after.append((proc.memory_info().rss, workers))
        conn.close()
    first, last = after[0], after[-1]
    return first[0] / 2**20, last[0] / 2**20, last[1] / max(1, first[1])


def cancel_latency(tmp: Path, repeats: int = 3) -> tuple[float, list[float]]:
    """Seconds from cancel() to the Finished(cancelled) event, mid-well."""
    from openhcs_nb import Pipeline, Step
    from openhcs_nb.functions import gaussian_blur

    slow = Step(
        name="slow",
        func={1: [(gaussian_blur, {"sigma": 8.0})] * 60},
        group_by="channel",
    )
    pipeline = Pipeline("slow", (slow, *nuclei_count_pipeline().steps))
    args = [
        "--demo",
        "--port",
        "0",
        "--results",
        str(tmp / "cancel"),
        "--workers",
        str(WORKERS),
    ]
    latencies = []
    with LocalServer([*args, "--log-level", "WARNING"], tmp / "canceldir") as server:
        conn = connect(server.address)
        for _ in range(repeats):
            run = conn.submit(pipeline, "demo")
            time.sleep(2.0)  # let both workers get well into a well
            start = time.perf_counter()
            run.cancel()
            run.wait(60)
            latencies.append(time.perf_counter() - start)
        conn.close()
        ready = server.ready_seconds
    return ready, latencies


def stream_ratio(messages: int = 120) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    images = {
        "image/DAPI": rng.integers(0, 4000, (1024, 1024), dtype=np.uint16),
        "image/GFP": rng.integers(0, 4000, (1024, 1024), dtype=np.uint16),
        "labels/nuclei": rng.integers(0, 300, (1024, 1024), dtype=np.int32),
    }
    packer = ArrayPacker()
    refs = packer.add_all(images)
    event = WellDone(
        execution_id="ex-bench", seq=1, time=0.0, well="A01", previews=refs
    )
    frames = event_frames(event, packer.buffers)
    nbytes = sum(memoryview(f).nbytes for f in frames)
    ctx = zmq.Context()

    def ours() -> float:
        pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
        pub.setsockopt(zmq.SNDHWM, 0)
        sub.setsockopt(zmq.RCVHWM, 0)
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sub.setsockopt(zmq.SUBSCRIBE, event_topic("ex-bench"))
        time.sleep(0.3)  # let the subscription reach the publisher
        done = threading.Event()

        def receive() -> None:
            for _ in range(messages):
                got, buffers = decode_event_frames(sub.recv_multipart(copy=False))
                unpack_arrays(got.previews, buffers)
            done.set()

        thread = threading.Thread(target=receive)
        thread.start()
        start = time.perf_counter()
        for i in range(messages):
            ev = WellDone(
                execution_id="ex-bench", seq=i + 1, time=0.0, well="A01", previews=refs
            )
            pub.send_multipart(event_frames(ev, packer.buffers), copy=False)
        done.wait()
        elapsed = time.perf_counter() - start
        thread.join()
        pub.close(0)
        sub.close(0)
        return elapsed

    def raw() -> float:
        push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        push.connect(f"tcp://127.0.0.1:{port}")
        done = threading.Event()

        def receive() -> None:
            for _ in range(messages):
                pull.recv_multipart(copy=False)
            done.set()

        thread = threading.Thread(target=receive)
        thread.start()
        start = time.perf_counter()
        for _ in range(messages):
            push.send_multipart(frames, copy=False)
        done.wait()
        elapsed = time.perf_counter() - start
        thread.join()
        push.close(0)
        pull.close(0)
        return elapsed

    ours_s = statistics.median(ours() for _ in range(3))
    raw_s = statistics.median(raw() for _ in range(3))
    ctx.term()
    gbps = lambda s: nbytes * messages / s / 1e9  # noqa: E731
    return gbps(ours_s), gbps(raw_s)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss-runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local, remote, latencies, wells = wall_times(Path(tmp), args.repeats)
        rss_first, rss_last, worker_ratio = rss_growth(Path(tmp), args.rss_runs)
        ready, cancels = cancel_latency(Path(tmp))
    ours, raw = stream_ratio()
    code = len(nuclei_count_pipeline().to_code().encode())
    pickled = len(dill.dumps(nuclei_count_pipeline()))
    print(f"demo plate, {wells} wells, {WORKERS} workers, median of {args.repeats}")
    print(f"  in-process          {local:7.2f} s")
    print(
        f"  remote (loopback)   {remote:7.2f} s   ratio {remote / local:.3f}  (goal <= 1.10)"
    )
    print(f"well latency stored -> callback, {len(latencies)} wells")
    print(f"  p50 {percentile(latencies, 50) * 1000:6.2f} ms  (goal < 20)")
    print(f"  p99 {percentile(latencies, 99) * 1000:6.2f} ms  (goal < 100)")
    print("full-resolution stream, 2 x uint16 + int32 labels at 1024^2 per message")
    print(
        f"  ours {ours:6.2f} GB/s  raw PUSH/PULL {raw:6.2f} GB/s  ratio {ours / raw:.3f}  (goal >= 0.8)"
    )
    print(
        f"server RSS after 1 run {rss_first:.1f} MiB, after {args.rss_runs} runs {rss_last:.1f} MiB"
    )
    print(
        f"  ratio {rss_last / rss_first:.3f}  (goal ~1.0); workers' RSS ratio {worker_ratio:.3f}"
    )
    print(f"server ready in {ready:.2f} s (goal < 3 s)")
    print(
        f"cancel -> finished(cancelled): {', '.join(f'{c * 1000:.0f} ms' for c in cancels)} (goal < 1 s)"
    )
    print(f"pipeline code {code} B, dill {pickled} B, dill/code {pickled / code:.2f}")


if __name__ == "__main__":
    main()
