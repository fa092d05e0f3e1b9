"""The web process around the core.

`slack`: the Bolt app, Block Kit and card delivery. `gateway`: the HTTP API, MCP, metrics and
the dashboard.
"""
