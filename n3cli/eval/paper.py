"""Published numbers to compare against: the paper's Table 3 (N3Net, PSNR in dB)."""

from __future__ import annotations

TABLE3: dict[tuple[str, int], float] = {
    ("set12", 25): 30.55, ("set12", 50): 27.43, ("set12", 70): 25.90,
    ("bsd68", 25): 29.30, ("bsd68", 50): 26.39, ("bsd68", 70): 25.14,
    ("urban100", 25): 30.19, ("urban100", 50): 26.82, ("urban100", 70): 25.15,
}


def paper_psnr(dataset: str, sigma: float) -> float | None:
    """Table 3's N3Net PSNR for this dataset and sigma, or None where the paper has none."""
    if not float(sigma).is_integer():
        return None
    return TABLE3.get((dataset, int(sigma)))
