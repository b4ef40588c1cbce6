"""Shared pieces of the benchmarks: processes, CPU accounting, wrk, the machine description."""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
SECRET = "bench-secret-0123456789-0123456789-abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"bench: {tool} is not installed (make bench installs it)")
    return found


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            continue
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Served:
    base_url: str
    pid: int


@contextmanager
def serve(argv: list[str], env: dict[str, str], ready_path: str, log: Path) -> Iterator[Served]:
    """Run a server process until the block ends; wait for ``ready_path`` to answer 200."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + ready_path, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: server did not start, see {log}")
            time.sleep(0.2)
        yield Served(base, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    ok: int
    conflict: int
    other: int
    client_cpu_s: float


_RESULT = re.compile(r"RESULT ok=(\d+) conflict=(\d+) other=(\d+) p50=([\d.]+) p99=([\d.]+)")


def wrk(url: str, script: Path, args: list[str], *, clients: int, duration: int) -> WrkResult:
    """Run wrk with a Lua script and parse its summary line (and latency percentiles)."""
    before = children_cpu_seconds()
    completed = subprocess.run(
        [
            need("wrk"),
            "-t2",
            f"-c{clients}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    cpu = children_cpu_seconds() - before
    text = completed.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    found = _RESULT.search(text)
    if found:
        ok, conflict, other = (int(found.group(i)) for i in (1, 2, 3))
        p50, p99 = float(found.group(4)), float(found.group(5))
    else:
        ok, conflict, other = int(rps * duration), 0, 0
        p50 = _percentile(text, "50%")
        p99 = _percentile(text, "99%")
    return WrkResult(rps, p50, p99, ok, conflict, other, cpu)


def _percentile(text: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def machine() -> str:
    """A short description of the machine the figures were measured on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb // 1024 // 1024} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {sys.version.split()[0]}, {pg}"
    )
