"""`n3 eval --ensemble`: the bundled model's self-ensemble is scored and labelled."""

from __future__ import annotations

import json

from click.testing import CliRunner

from n3cli.cli.main import cli


def test_eval_ensemble_two_images_bundled_model(set12):
    runner = CliRunner()
    args = ["eval", "--dataset", "set12", "--model", "n3net-blind", "--sigma", "25",
            "--limit", "2", "--data-dir", str(set12), "--device", "cpu", "--json", "-"]
    plain = json.loads(runner.invoke(cli, args).stdout)
    res = runner.invoke(cli, args + ["--ensemble", "4"])
    assert res.exit_code == 0, res.output
    ens = json.loads(res.stdout)
    assert plain["ensemble"] == 1 and ens["ensemble"] == 4
    assert plain["limit"] == 2 and plain["diff_to_paper"] is None  # a partial run says so
    # Same noise (same seed), different estimator: the scores differ, by a fraction of a dB.
    assert ens["mean_psnr"] != plain["mean_psnr"]
    assert abs(ens["mean_psnr"] - plain["mean_psnr"]) < 1.0
