"""engine.device.keep_freed_host_memory: freed large blocks are reused, not faulted in again.

Process-wide, so it runs in a subprocess: allocate, fill and free a 64 MiB tensor six times
and count the minor page faults of the last three (the first fills may still fault while
the heap settles; a training step then repeats the same pattern thousands of times).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

CODE = """
import json, resource, sys, torch
from n3cli.engine.device import keep_freed_host_memory
applied = keep_freed_host_memory() if sys.argv[1] == "keep" else False
def faults_of_one_fill():
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(16 * 2**20, dtype=torch.float32)
    t.fill_(1.0)
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0
fills = [faults_of_one_fill() for _ in range(6)]
print(json.dumps({"applied": applied, "faults": sum(fills[3:]), "each": fills}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's (Linux); elsewhere the function returns False")
def test_freed_memory_is_reused_without_page_faults():
    runs = {}
    for mode in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True,
                             check=True).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
    assert runs["keep"]["applied"] is True
    # 64 MiB is 16,384 pages of 4 KiB: glibc's default unmaps it on free and faults it in again.
    assert min(runs["default"]["each"]) > 10_000, runs
    assert runs["keep"]["faults"] < 100, runs
