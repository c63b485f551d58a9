"""Give the C heap that start-up freed back to the operating system (glibc only).

Importing pydantic, paho and the driver modules compiles and throws away a
lot of short-lived objects (dataclass methods are generated with ``exec``,
pydantic builds and discards schema dicts). glibc keeps the freed chunks in
the process, so they count in the agent's resident memory for ever. On the
benchmark machine ``malloc_trim(0)`` after start-up takes about 0.3 MB off
the resident set, idle and at the peak of a 5,000-vend burst
(``tests/benchmarks/test_agent_bench.py``; figures in docs/decisions.md).
It is a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import gc


def release_freed_heap() -> bool:
    """Collect garbage and return free heap pages to the OS; False if not on glibc."""
    gc.collect()
    try:
        # The symbols already loaded into the process, the C library's among them;
        # no ctypes.util.find_library, which would run ldconfig in a child process.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False  # musl and others have no malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
