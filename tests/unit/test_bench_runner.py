"""`python -m bench`: benchmarks are found rather than listed, unknown names are refused, and one failing benchmark
is reported without hiding the others' figures. (The benchmarks themselves are run by `make bench`, not here.)"""

from __future__ import annotations

import pytest

from bench import __main__ as runner
from bench.figures import Figure


def test_every_benchmark_with_a_measure_function_is_found() -> None:
    found = runner.discover()
    assert {"aws", "azure", "dispatch", "gcp", "prefect", "store"} <= set(found)
    assert not {"figures", "footprint", "fresh_process", "__main__"} & set(found), "helpers are not benchmarks"


@pytest.mark.parametrize("only", ["aws,nope", "nope", "AWS"])
def test_unknown_benchmark_names_are_refused(only: str) -> None:
    with pytest.raises(SystemExit, match="unknown benchmark"):
        runner.select(runner.discover(), only)


def test_only_keeps_the_order_asked_for() -> None:
    assert list(runner.select(runner.discover(), " gcp, aws ,")) == ["gcp", "aws"]


def test_a_failing_benchmark_is_reported_and_the_others_still_print(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def good(quick: bool) -> list[Figure]:
        print("chatter that must not reach the table")
        return [Figure("good", "runs per second", 42.0, "runs/s", "≥ 1", True), Figure("good", "quick", quick, "")]

    def broken(quick: bool) -> list[Figure]:
        raise RuntimeError("the fake did not start")

    monkeypatch.setattr(runner, "discover", lambda: {"broken": broken, "good": good})
    status = runner.main(["--quick"])
    out, err = capsys.readouterr()
    assert status == 1
    assert "runs per second" in out
    assert "42.000 runs/s" in out
    assert "1.000" in out, "measure() was called with quick=True"
    assert "chatter" not in out
    assert "chatter" in err
    assert "bench.broken FAILED" in err
    assert "the fake did not start" in err


def test_an_unimportable_benchmark_fails_when_run() -> None:
    measure = runner._failing(ImportError("no module named moto"))
    with pytest.raises(ImportError, match="moto"):
        measure(False)
