"""An asyncio gRPC load generator for the Open Inference Protocol (v2) ModelInfer call.

Runs ``--concurrency`` coroutines on one channel, each sending the same
request back to back for ``--seconds``, then prints one JSON line: requests,
errors, seconds, p50/p95/p99 in ms and the CPU seconds this process spent
while generating load. The same client drives KServe and MLServer (both
serve ``inference.GRPCInferenceService``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

_CONTENTS = {
    "BYTES": "bytes_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "BOOL": "bool_contents",
}


def build_request(v2_json: dict, model: str):
    """A ModelInferRequest equal to a v2 REST request body."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=model, id=v2_json.get("id", ""))
    for spec in v2_json["inputs"]:
        tensor = request.inputs.add(
            name=spec["name"], datatype=spec["datatype"], shape=spec["shape"]
        )
        field = _CONTENTS.get(spec["datatype"])
        if field is None:
            raise ValueError(f"unsupported datatype {spec['datatype']!r} in input {spec['name']!r}")
        data = (
            list(np.asarray(spec["data"]).ravel()) if spec["datatype"] != "BYTES" else spec["data"]
        )
        if spec["datatype"] == "BYTES":
            data = [item.encode() if isinstance(item, str) else item for item in data]
        getattr(tensor.contents, field).extend(data)
    return request


def _tree_cpu(pid: int | None) -> float | None:
    if pid is None:
        return None
    from bench.loadgen import tree_cpu_seconds

    return tree_cpu_seconds(pid)


async def drive(
    target: str, request, concurrency: int, seconds: float, server_pid: int | None = None
) -> dict:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        await asyncio.wait_for(stub.ModelInfer(request), timeout=30)  # warm the channel
        cpu_start = resource.getrusage(resource.RUSAGE_SELF)
        server_start = _tree_cpu(server_pid)
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    await stub.ModelInfer(request, timeout=10)
                    latencies.append(time.perf_counter() - sent)
                except grpc.aio.AioRpcError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_end = resource.getrusage(resource.RUSAGE_SELF)
        server_end = _tree_cpu(server_pid)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    millis = np.asarray(latencies) * 1000 if latencies else np.asarray([float("nan")])
    return {
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "p50_ms": float(np.percentile(millis, 50)),
        "p95_ms": float(np.percentile(millis, 95)),
        "p99_ms": float(np.percentile(millis, 99)),
        "cpu_s": cpu,
        "server_cpu_s": None if server_pid is None else server_end - server_start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--request", required=True, type=Path, help="v2 REST request JSON file")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--server-pid", type=int, help="also report this process tree's CPU")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.seconds <= 0:
        parser.error("--concurrency must be >= 1 and --seconds > 0")
    request = build_request(json.loads(args.request.read_text()), args.model)
    print(
        json.dumps(
            asyncio.run(
                drive(args.target, request, args.concurrency, args.seconds, args.server_pid)
            )
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
