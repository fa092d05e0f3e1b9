"""The Slack fixtures (stand-in, signed Bolt app, real worker) for the framework tests, and
the end of every reviewer thread a test started."""

from collections.abc import Iterator

import pytest

from tests.slack.conftest import bot, slack  # noqa: F401  (fixtures, re-exported)


@pytest.fixture(autouse=True)
def reviewers_done(request: pytest.FixtureRequest) -> Iterator[None]:
    """Join the test's `Reviewer` threads before its `approvals` closes.

    The agent wakes the moment a decision lands, while the reviewer's `decide` is still doing
    its bookkeeping (autonomy counts); ending the test then closed the connection under it.
    `approvals` is set up first here, so it is torn down after this fixture."""
    if "approvals" in request.fixturenames:
        request.getfixturevalue("approvals")
    yield
    from tests.integrations.test_langgraph import REVIEWERS

    while REVIEWERS:
        thread = REVIEWERS.pop()
        thread.join(30)
        assert not thread.is_alive(), "a reviewer thread was still deciding 30 s after its test ended"
