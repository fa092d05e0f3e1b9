"""The MCP gateway: one MCP server in front of other MCP servers, every tool call through
the policy (`hitl mcp gateway --config FILE` on stdio, `/mcp/gateway` of the web process).

`config` reads the YAML file, `upstreams` holds the connections to the servers behind it,
`calls` decides each `tools/call` (forward, file and wait, refuse) and `server` serves it.
"""
