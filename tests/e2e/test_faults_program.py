"""``bench/faults.py`` in its smallest configuration, so the fault-injection program cannot rot.

It starts its own control plane and operator (not the shared fixtures) and is judged on what it
reports: every figure measured, nothing recorded or applied twice, the trail verified.
"""

from __future__ import annotations

import json
import math
import pathlib

from bench import faults


def test_the_fault_program_runs_and_reports_every_figure(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "faults.json"
    code = faults.main(["--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    run = result["runs"][0]
    assert code == 0, run.get("error")
    figures = run["figures"]
    assert set(figures) == set(faults.FIGURES), figures
    for key in (
        "ttlApiserverDown",
        "ttlOperatorDown",
        "ttlOperatorBack",
        "endAcrossApiserverOutage",
    ):
        assert not math.isnan(figures[key]), (key, figures)
    churn = run["churn"]
    assert churn["sessions"] > 0, churn
    assert churn["kills"] == 1
    assert figures["duplicateRecordIds"] == 0, churn
    assert figures["duplicateTransitions"] == 0, churn
    assert figures["targetsChangedTwice"] == 0, churn
    assert figures["unsettled"] == 0, churn
    assert figures["trailVerified"] == 1, churn["verifyOutput"]
    assert result["summary"]["ttlOperatorDown"]["runs"] == 1
