"""`make soak`'s verdict: a flake is a test whose answer changes between runs, not a steady skip."""

from __future__ import annotations

from tests.soak import Outcome, steadily_skipped, unstable

P, F, S, E, M = Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.ERROR, Outcome.MISSING


def test_a_test_skipped_every_run_is_reported_apart_not_as_a_flake() -> None:
    runs = [{"a": P, "schema": S}, {"a": P, "schema": S}, {"a": P, "schema": S}]
    assert unstable(runs) == {}
    assert steadily_skipped(runs) == ["schema"]


def test_a_test_that_changes_its_answer_or_fails_is_named_with_each_runs_outcome() -> None:
    runs = [{"a": P, "b": S, "c": F, "d": P}, {"a": F, "b": P, "c": F}, {"a": P, "b": S, "c": F, "d": E}]
    assert unstable(runs) == {"a": [P, F, P], "b": [S, P, S], "c": [F, F, F], "d": [P, M, E]}
    assert steadily_skipped(runs) == []
