"""A tiny real MCP server for the gateway's tests: `python -m tests.mcpgateway.upstream stdio`
or `... http PORT`. Every call it receives is appended to $UPSTREAM_LOG (one JSON line:
tool and arguments), so a test can count what reached it and with which arguments."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations

server = MCPServer("upstream")
_lock = threading.Lock()


def _received(tool: str, arguments: dict[str, Any]) -> None:
    with _lock, open(os.environ["UPSTREAM_LOG"], "a", encoding="utf-8") as log:
        # The parent is the gateway that started it (over stdio): a test may kill it by this pid.
        log.write(json.dumps({"tool": tool, "arguments": arguments, "parent": os.getppid()}) + "\n")


@server.tool(annotations=ToolAnnotations(read_only_hint=True), structured_output=False)
def echo(text: str) -> str:
    """Say the text back."""
    _received("echo", {"text": text})
    return f"echo: {text}"


@server.tool(annotations=ToolAnnotations(destructive_hint=True), structured_output=False)
def delete_file(path: str) -> str:
    """Delete a file (only pretends to)."""
    _received("delete_file", {"path": path})
    return f"deleted {path}"


@server.tool(structured_output=False)
def post_update(text: str) -> str:
    """Post a status update."""
    _received("post_update", {"text": text})
    return f"posted: {text}"


@server.tool(annotations=ToolAnnotations(destructive_hint=True), structured_output=False)
async def hang(tag: str) -> str:
    """Record the call, then never answer (the gateway is killed meanwhile)."""
    import asyncio

    _received("hang", {"tag": tag})
    await asyncio.Event().wait()
    return "unreachable"


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run(
            "streamable-http", host="127.0.0.1", port=int(sys.argv[2]), stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
