"""The cell kernel's k-round loop (continuous kNN + scatter to cell weights), three ways.

    python bench/knn_rounds.py [--blocks 12] [--union 18] [--threads 1] [--compile]

One chunk of the cell kernel (:mod:`n3cli.ops.cells`) for the paper geometry (blocks of
4 x 4 queries, union 18 x 18 for window 15; ``--union 10`` is window 7, the bundled
models'): the k = 7 rounds of the continuous kNN and the m*m = 4 shifted scatters of the
weights into the cell-weight matrix. Rows:

- ``kernel`` what the kernel runs: the weight-space recursion of
  :func:`n3cli.ops.knn.knn_rounds`, the k rounds stacked side by side, masked by the
  owned mask once, then m*m adds;
- ``per-round`` the same recursion, each round scattered as soon as it exists (one
  ``addcmul_`` with the owned mask per round and shift: k*m*m strided passes);
- ``before`` the kernel until 2026-12-04: the per-round scatter and the recursion on the
  logits (``logits += log(1 - W)``: a log-softmax, an ``exp``, an arg-max and a
  ``log1p`` per round), kept here as the baseline;
- ``compiled`` ``torch.compile`` of the ``per-round`` loop (inductor; needs a C++
  compiler on the CPU), with the compile time, only with ``--compile`` (minutes on a
  2-core machine).

``max |diff|`` is against ``before``. A second table times ``torch.exp`` on log-weights
near and far below their row maximum: the CPU's vectorised exp takes a slow path for
inputs below about -87 (results that underflow) and for -inf, while ``log_softmax`` does
not. CPU seconds, best of 3.
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (puts the checkout on sys.path, flushes denormals)
import torch

from _common import machine
from n3cli.ops.knn import knn_rounds, log1mexp

K, M, BQ = 7, 2, 4


def log_space_rounds(logits: torch.Tensor, k: int):
    """The previous knn_rounds (inference branch): the recursion on the logits."""
    for r in range(k):
        w = torch.log_softmax(logits, dim=-1)
        weight = torch.exp(w)
        yield weight
        if r == k - 1:
            break
        wmax, arg = w.max(dim=-1, keepdim=True)
        del w
        step = torch.neg(weight).clamp_(min=-0.5).log1p_().scatter_(-1, arg, log1mexp(wmax))
        logits = logits + step if r == 0 else logits.add_(step)


def per_round(logits: torch.Tensor, nb: int, u: int, rounds=knn_rounds) -> torch.Tensor:
    a = torch.zeros(1, nb, BQ + M - 1, BQ + M - 1, K, u + M - 1, u + M - 1)
    own = torch.ones(1, nb, BQ, BQ, 1, 1)
    for r, weight in enumerate(rounds(logits, K)):
        wv = weight.view(1, nb, BQ, BQ, u, u)
        for o1 in range(M):
            for o2 in range(M):
                a[:, :, o1:o1 + BQ, o2:o2 + BQ, r, o1:o1 + u, o2:o2 + u].addcmul_(wv, own)
    return a


def kernel(logits: torch.Tensor, nb: int, u: int) -> torch.Tensor:
    wk = torch.empty(1, nb, BQ, BQ, K, u, u)
    for r, w in enumerate(knn_rounds(logits, K)):
        wk[:, :, :, :, r] = w.view(1, nb, BQ, BQ, u, u)
    wk.mul_(torch.ones(1, nb, BQ, BQ, 1, 1, 1))
    a = torch.zeros(1, nb, BQ + M - 1, BQ + M - 1, K, u + M - 1, u + M - 1)
    for o1 in range(M):
        for o2 in range(M):
            a[:, :, o1:o1 + BQ, o2:o2 + BQ, :, o1:o1 + u, o2:o2 + u].add_(wk)
    return a


def cpu_ms(fn, repeat: int = 20) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - t) / repeat)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=12, help="blocks per chunk")
    ap.add_argument("--union", type=int, default=18, help="union side in patches (window + 3)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="also torch.compile the per-round loop")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nb, u = args.blocks, args.union
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, nb, BQ * BQ, u * u, generator=gen) * 3
    # Candidates outside each query's window are -inf, as in the kernel.
    logits.view(1, nb, BQ, BQ, u, u)[..., : BQ - 1, :] = float("-inf")
    print(machine(torch.device("cpu")))
    print(f"one chunk: {nb} blocks of {BQ}x{BQ} queries, union {u}x{u}, k = {K}")
    print(f"{'variant':>10} {'cpu ms':>9} {'max |diff|':>11} {'compile s':>10}")
    with torch.inference_mode():
        def before(*a):
            return per_round(*a, rounds=log_space_rounds)

        ref = before(logits, nb, u)
        rows = [("kernel", kernel, None), ("per-round", per_round, None), ("before", before, None)]
        if args.compile:
            t = time.time()
            comp = torch.compile(per_round, dynamic=False)
            comp(logits, nb, u)
            rows.append(("compiled", comp, time.time() - t))
        for name, fn, ctime in rows:
            ms = cpu_ms(lambda: fn(logits, nb, u))
            diff = (fn(logits, nb, u) - ref).abs().max().item()
            print(f"{name:>10} {ms:9.2f} {diff:11.2e} {'' if ctime is None else f'{ctime:10.1f}':>10}")

        print(f"\n{'exp of':>28} {'cpu ms / 4M':>12}")
        n = 4_000_000
        near = -torch.rand(n, generator=gen) * 20
        masked = near.clone()
        masked[torch.rand(n, generator=gen) < 0.3] = float("-inf")
        far = -torch.rand(n, generator=gen) * 1000
        for label, t in (("U(-20, 0)", near), ("U(-20, 0), 30 % -inf", masked),
                         ("U(-1000, 0)", far)):
            print(f"{label:>28} {cpu_ms(lambda: torch.exp(t), 5):12.1f}")
        print(f"{'log_softmax, U(-1000, 0)':>28} {cpu_ms(lambda: torch.log_softmax(far.view(-1, 400), -1), 5):12.1f}")


if __name__ == "__main__":
    main()
