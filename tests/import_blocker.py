"""Run a module in a subprocess with some imports made impossible (a uniquely named helper
module: both the CLI and the training tests use it).

``blocked_run_code(module, prog)`` is Python code for ``python -c CODE BLOCKED ARGS...``:
BLOCKED is a comma-separated list of top-level module names; importing any of them
raises ModuleNotFoundError, then ``module`` runs as ``__main__`` with ``prog ARGS...``.
"""

from __future__ import annotations

TEMPLATE = """
import builtins, runpy, sys
BLOCK = set(sys.argv[1].split(","))
real = builtins.__import__
def imp(name, *a, **k):
    if name.split(".")[0] in BLOCK:
        raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
    return real(name, *a, **k)
builtins.__import__ = imp
sys.argv = [{prog!r}] + sys.argv[2:]
runpy.run_module({module!r}, run_name="__main__")
"""


def blocked_run_code(module: str, prog: str) -> str:
    return TEMPLATE.format(module=module, prog=prog)
