"""The web process around the core: `slack` (the Bolt app, Block Kit, card delivery) and `gateway` (HTTP API, MCP, metrics, dashboard)."""
