"""The Slack fixtures (stand-in, signed Bolt app, real worker) for the framework tests."""

from tests.slack.conftest import bot, slack  # noqa: F401  (fixtures, re-exported)
