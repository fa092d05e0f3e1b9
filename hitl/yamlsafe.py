"""Bounded, strict YAML reading for configuration files (the policy).

PyYAML's safe loader accepts duplicate keys (the last one silently wins: `mode: gate`
then `mode: auto` is auto), builds nested nodes recursively (a few thousand `[` raise
RecursionError) and will happily expand aliases. Each check here turns one of those into
a one-line `ConfigError` before anything is built:

- size and UTF-8 are checked on the raw bytes;
- depth and alias count on PyYAML's event stream, which is produced without recursion;
- duplicate keys while the mapping is constructed, naming the key and its line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from hitl.errors import ConfigError

# Largest file read (bytes): a policy is a page of YAML, not a data set.
MAX_BYTES = 1024 * 1024
# Deepest nesting of mappings and lists.
MAX_DEPTH = 20
# Most alias references (`*name`): enough for sharing a ladder, too few for a "billion laughs".
MAX_ALIASES = 100


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key; SafeLoader reports it itself
                    continue
                if first is not None:
                    raise ConfigError(f"duplicate key {key!r} on line {line} (first given on line {first})")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def _check_shape(text: str) -> None:
    """Refuse too-deep nesting and too many aliases, walking events (no recursion)."""
    depth = 0
    aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep (line {line})")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(f"more than {MAX_ALIASES} aliases (*name)")


def _one_line(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        where = f" on line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        what = exc.problem or exc.context or "malformed"
        return f"not valid YAML: {what}{where}"
    return f"not valid YAML: {' '.join(str(exc).split())}"


def load_bytes(raw: bytes, source: str) -> Any:
    """Parse a YAML document; every problem is one `ConfigError` line starting with `source`."""
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(raw):,} bytes; the limit is {MAX_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not valid UTF-8 (byte {exc.start})") from None
    return load_text(text, source)


def load_text(text: str, source: str) -> Any:
    """`load_bytes` for text already decoded."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError(f"{source}: larger than the limit of {MAX_BYTES:,} bytes")
    try:
        _check_shape(text)
        return yaml.load(text, Loader=StrictLoader)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {_one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
