"""The gateway's YAML file: which MCP servers sit behind it, and how to reach each.

```yaml
wait_seconds: 50              # optional: longest one call is held before "still pending"
upstreams:
  files:                      # a stdio server: the gateway starts it
    command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/data]
    env: {LOG_LEVEL: warn}
  tickets:                    # a streamable-HTTP server
    url: https://tickets.internal/mcp
    headers: {Authorization: "Bearer ${TICKETS_TOKEN}"}
```

``${NAME}`` in `env` and `headers` values is replaced from the gateway's own environment, so
secrets stay out of the file; an unset one is an error naming it, not an empty header.

`wait_seconds` (default 50, under the 60 s many MCP clients allow a tool call) bounds how long
one `tools/call` of a gated tool is held waiting for a reviewer before the gateway answers
that the request is still pending (`bot.gateway.mcpgateway.calls`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hitl import yamlsafe
from hitl.errors import ConfigError

# An upstream's name: it prefixes its tools' names on a clash (`NAME__tool`) and their
# actions always (`NAME.tool`), so it is limited to what both allow.
UpstreamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class StdioUpstream(BaseModel):
    """An MCP server the gateway starts and talks to over its stdin/stdout."""

    model_config = ConfigDict(extra="forbid")
    command: list[Annotated[str, StringConstraints(min_length=1)]] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class HttpUpstream(BaseModel):
    """An MCP server reached over streamable HTTP."""

    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    headers: dict[str, str] = Field(default_factory=dict)


Upstream = StdioUpstream | HttpUpstream


# The file's top-level keys.
KEYS = frozenset({"upstreams", "wait_seconds"})
# How long one gated call is held, by default and at most (seconds).
DEFAULT_WAIT, MAX_WAIT = 50.0, 3600.0


class GatewayConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")
    upstreams: dict[UpstreamName, Upstream] = Field(min_length=1)
    wait_seconds: float = DEFAULT_WAIT


def _expand(value: str, where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: ${{{name}}} is not set in the gateway's environment")
        return os.environ[name]

    return _VAR.sub(one, value)


def _upstream(name: str, raw: Any) -> Upstream:
    if not isinstance(raw, dict) or ("command" in raw) == ("url" in raw):
        raise ConfigError(
            f"upstreams.{name}: give either command: [argv...] (a stdio server) or url: ... "
            "(a streamable-HTTP server)"
        )
    kind: type[Upstream] = StdioUpstream if "command" in raw else HttpUpstream
    try:
        up = kind.model_validate(raw)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"upstreams.{name}.{field}: {err['msg']}") from None
    if isinstance(up, StdioUpstream):
        up.env = {k: _expand(v, f"upstreams.{name}.env.{k}") for k, v in up.env.items()}
    else:
        up.headers = {k: _expand(v, f"upstreams.{name}.headers.{k}") for k, v in up.headers.items()}
    return up


def parse(raw: Any, source: str = "gateway config") -> GatewayConfig:
    """The config from YAML already read; `ConfigError` naming the field at fault."""
    if not isinstance(raw, dict) or not isinstance(raw.get("upstreams"), dict) or set(raw) - KEYS:
        raise ConfigError(
            f"{source}: must be a mapping with upstreams: {{NAME: {{...}}}} (and optionally wait_seconds)"
        )
    wait = raw.get("wait_seconds", DEFAULT_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait <= MAX_WAIT:
        raise ConfigError(f"{source}: wait_seconds: a number of seconds above 0 and at most {MAX_WAIT:g}")
    if not raw["upstreams"]:
        raise ConfigError(f"{source}: upstreams: name at least one MCP server")
    ups: dict[str, Upstream] = {}
    for name, value in raw["upstreams"].items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
            raise ConfigError(
                f"upstreams.{name}: a name is 1 to 40 letters, digits, _ or - (it prefixes tool names)"
            )
        ups[name] = _upstream(name, value)
    return GatewayConfig.model_construct(upstreams=ups, wait_seconds=float(wait))


def load(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and check the file at `path`."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--config {file}: cannot read it ({exc.strerror or exc})") from None
    return parse(yamlsafe.load_bytes(raw, str(file)), str(file))
