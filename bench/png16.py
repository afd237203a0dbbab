"""16-bit PNG codecs, measured: why n3cli reads and writes them with imagecodecs.

Encodes a synthetic 16-bit RGB photo-like image (smooth gradients + noise) with each
installed codec, then decodes every codec's file with every codec (a file from libpng's
adaptive filters costs a pure-Python decoder much more than an unfiltered one), and
checks each round trip is lossless. Codecs: imagecodecs (n3cli's choice, a runtime
dependency), pypng (the test extra), OpenCV (only if installed; not a dependency).

    python bench/png16.py [--size 2000x1500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np


def _codecs() -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    import imagecodecs

    found["imagecodecs"] = (lambda a: bytes(imagecodecs.png_encode(a)), imagecodecs.png_decode)
    try:
        import png

        def pypng_encode(a: np.ndarray) -> bytes:
            buf = io.BytesIO()
            png.Writer(a.shape[1], a.shape[0], greyscale=False, bitdepth=16).write(buf, a.reshape(a.shape[0], -1))
            return buf.getvalue()

        def pypng_decode(data: bytes) -> np.ndarray:
            w, h, rows, _ = png.Reader(bytes=data).asDirect()
            return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, -1)

        found["pypng"] = (pypng_encode, pypng_decode)
    except ImportError:
        pass
    try:
        import cv2

        found["opencv"] = (lambda a: cv2.imencode(".png", np.ascontiguousarray(a[..., ::-1]))[1].tobytes(),
                           lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1])
    except ImportError:
        pass
    return found


def _best(fn, repeat: int) -> tuple[object, float]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2000x1500", help="W x H of the test image")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x / 50) + np.cos(y / 70)) * 0.25 + 0.5
    img = np.stack([base, base * 0.8, base * 0.6], -1) + rng.normal(0, 0.02, (h, w, 3))
    a = (np.clip(img, 0, 1) * 65535).astype(np.uint16)
    codecs = _codecs()
    print(f"16-bit RGB PNG, {w}x{h} ({w * h / 1e6:.1f} MP), best of {args.repeat}, seconds")
    files = {}
    print(f"{'codec':12s} {'encode s':>9s} {'MB':>6s}  " + "  ".join(f"decode {n}-file" for n in codecs))
    for name, (enc, _) in codecs.items():
        files[name], secs = _best(lambda: enc(a), args.repeat)
        files[name] = (files[name], secs)
    for name, (_, dec) in codecs.items():
        data, secs = files[name]
        cells = []
        for src in codecs:
            out, t = _best(lambda: dec(files[src][0]), args.repeat)
            ok = np.array_equal(np.asarray(out).reshape(a.shape), a)
            cells.append(f"{t:9.2f}{'' if ok else ' LOSSY'}")
        print(f"{name:12s} {secs:9.2f} {len(data) / 1e6:6.1f}  " + "  ".join(f"{c:>{len(s) + 14}s}" for c, s in zip(cells, codecs)))
    print("rows: the codec that encodes (its time, file size) and decodes (columns: whose file)")


if __name__ == "__main__":
    main()
