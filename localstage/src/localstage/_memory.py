"""The memory a function's environment uses, as Lambda measures it against MemorySize.

Lambda stops an execution environment whose memory passes the function's
``MemorySize``: the invocation fails with ``Runtime.OutOfMemory`` and the next one
starts cold. Here the stage watches each environment's resident set (``VmRSS`` in
``/proc/<pid>/status``, Linux only) while it initialises and runs an invocation, and
kills it when it passes ``MemorySize``.

Why not an rlimit in the environment: ``RLIMIT_AS`` counts address space (every
thread's 8 MB stack, glibc's 64 MB malloc arenas, mapped libraries), ``RLIMIT_DATA``
still counts thread stacks, so either fails handlers that Lambda runs fine; the
resident set is what Lambda's "Max Memory Used" reports. The watch samples every
:data:`SAMPLE_SECONDS`, so a spike shorter than that can go unnoticed.
"""

from __future__ import annotations

#: How often a running environment's memory is sampled.
SAMPLE_SECONDS = 0.05


def resident_mb(pid: int) -> float | None:
    """The resident set of process ``pid`` in MiB; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def out_of_memory_error(request_id: str) -> dict[str, str]:
    """What Lambda answers for an invocation whose environment ran out of memory."""
    return {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }
