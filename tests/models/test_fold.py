"""BatchNorm folding: same outputs as eval-mode BatchNorm, original model untouched."""

from __future__ import annotations

import torch
import torch.nn as nn

from n3cli.models import N3Net, N3NetConfig
from n3cli.models.fold import fold_batchnorm_, fold_conv_bn, folded_copy
from n3cli.models.n3net import conv_twin

SMALL = N3NetConfig(features=16, depth=4, embed_features=8, embed_depth=3, n3_channels=4, k=3,
                    window=5)


def test_fold_conv_bn_matches_conv_then_bn(randomise_bn):
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(5, 7, 3, padding=1, bias=True), nn.BatchNorm2d(7)
    randomise_bn(bn)
    bn.eval()
    x = torch.randn(2, 5, 9, 11)
    with torch.no_grad():
        assert torch.allclose(fold_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5)


def test_folded_n3net_equals_eval_mode_and_leaves_the_original_alone(randomise_bn):
    torch.manual_seed(1)
    net = N3Net(SMALL)
    randomise_bn(net)
    net.train()
    folded = folded_copy(net)
    assert net.training, "the original keeps its mode"
    def in_sequentials(model):
        return [m for s in model.modules() if isinstance(s, nn.Sequential) for m in s
                if isinstance(m, nn.BatchNorm2d)]
    assert in_sequentials(net) and not in_sequentials(folded)
    x = torch.rand(1, 1, 37, 41)
    with torch.inference_mode():
        ref = net.eval()(x)
        out = folded(x)
    assert torch.isfinite(ref).all()
    assert (out - ref).abs().max().item() <= 1e-5


def test_fold_counts_every_conv_bn_pair():
    net = N3Net(SMALL).eval()
    # Local CNNs: depth-2 pairs each; N3 blocks: (embed_depth-1) pairs in each of 2 CNNs.
    expected = (SMALL.num_n3 + 1) * (SMALL.depth - 2) + SMALL.num_n3 * 2 * (SMALL.embed_depth - 1)
    assert fold_batchnorm_(net) == expected
    assert fold_batchnorm_(net) == 0  # nothing left to fold


def test_twin_with_embedding_runs_exactly_n3nets_convolutions():
    cfg = SMALL
    counts = {}
    for name, model in {"n3net": N3Net(cfg), "twin": conv_twin(cfg),
                        "twin+e": conv_twin(cfg, keep_embedding=True)}.items():
        calls = []
        hooks = [m.register_forward_hook(lambda m, i, o: calls.append(m.weight.shape))
                 for m in model.modules() if isinstance(m, nn.Conv2d)]
        with torch.inference_mode():
            model.eval()(torch.rand(1, 1, 30, 30))
        for h in hooks:
            h.remove()
        counts[name] = sorted(tuple(s) for s in calls)
    assert counts["twin+e"] == counts["n3net"]
    assert len(counts["twin"]) == len(counts["n3net"]) - 2 * cfg.num_n3 * cfg.embed_depth
