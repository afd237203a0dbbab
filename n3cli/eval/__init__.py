"""Evaluation: the paper's protocol (Table 3) and KAIR's, PSNR and SSIM."""

from n3cli.eval.metrics import psnr, ssim
from n3cli.eval.paper import TABLE3, paper_psnr
from n3cli.eval.protocol import EvalResult, ImageScore, evaluate, evaluate_many

__all__ = ["psnr", "ssim", "TABLE3", "paper_psnr", "EvalResult", "ImageScore", "evaluate",
           "evaluate_many"]
