"""What agents and operators call over HTTP: the web app, `/v1`, OpenAPI, MCP, `/metrics` and
the dashboard. Nothing here posts to Slack; that is `bot.slack`."""
