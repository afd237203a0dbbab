"""engine.device.keep_freed_host_memory: freed large blocks are reused, not faulted in again;
engine.device.huge_pages_for_tensors: large tensors are faulted in by 2 MiB pages.

Process-wide, so it runs in a subprocess: allocate, fill and free a 64 MiB tensor six times
and count the minor page faults of the last three (the first fills may still fault while
the heap settles; a training step then repeats the same pattern thousands of times).
"""

from __future__ import annotations

import json
import os
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
                             check=True, env={**os.environ, "THP_MEM_ALLOC_ENABLE": "0"}).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
    assert runs["keep"]["applied"] is True
    # 64 MiB is 16,384 pages of 4 KiB: glibc's default unmaps it on free and faults it in again.
    assert min(runs["default"]["each"]) > 10_000, runs
    assert runs["keep"]["faults"] < 100, runs


HUGE = """
import json, os, resource, sys
if sys.argv[1] == "unset":
    os.environ.pop("THP_MEM_ALLOC_ENABLE", None)
else:
    os.environ["THP_MEM_ALLOC_ENABLE"] = sys.argv[1]
import torch
from n3cli.engine.device import huge_pages_for_tensors
applied = huge_pages_for_tensors()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t = torch.ones(64 * 2**20, dtype=torch.float32)  # 256 MiB, one activation at 1024^2 x 64
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0,
                  "env": os.environ.get("THP_MEM_ALLOC_ENABLE")}))
"""


def _thp_available() -> bool:
    try:
        return "[never]" not in open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return False


@pytest.mark.skipif(not _thp_available(), reason="no transparent huge pages on this machine")
def test_large_tensors_get_huge_pages_unless_the_user_said_no():
    runs = {}
    for mode in ("unset", "0"):
        out = subprocess.run([sys.executable, "-c", HUGE, mode], capture_output=True, text=True,
                             check=True).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
    assert runs["unset"]["applied"] is True and runs["unset"]["env"] == "1"
    assert runs["0"]["applied"] is False and runs["0"]["env"] == "0"  # the user's choice stands
    # 256 MiB: 65,536 faults in 4 KiB pages, 128 in 2 MiB pages (some fall back under pressure).
    assert runs["0"]["faults"] > 60_000, runs
    assert runs["unset"]["faults"] < 20_000, runs


def test_huge_pages_are_linux_only(monkeypatch):
    from n3cli.engine import device

    monkeypatch.setattr(device.platform, "system", lambda: "Darwin")
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert device.huge_pages_for_tensors() is False


def test_training_says_no_first_and_that_stands(monkeypatch):
    """n3 train turns huge pages off before resolve_device would turn them on: PyTorch
    reads the variable once, so the first decision in a process is the one that holds."""
    from n3cli.engine import device

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert device.huge_pages_for_tensors(enable=False) is False
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
    assert device.huge_pages_for_tensors() is False  # what resolve_device then asks
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
