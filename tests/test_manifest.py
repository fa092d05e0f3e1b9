"""manifest.yml validates against Slack's published JSON Schema, offline.

The schema (slackapi/manifest-schema v0.5.0, `schemas/`, MIT) is kept in this repo at
`tests/data/slack-manifest-schema/` with its licence, so a lone clone runs every check: the
repo needs nothing beside it.
"""

from __future__ import annotations

import json

import jsonschema
import yaml
from referencing import Registry, Resource

from tests.helpers import ROOT

SCHEMAS = ROOT / "tests" / "data" / "slack-manifest-schema"
RAW = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"


def _validator() -> jsonschema.Draft7Validator:
    resources = []
    for name in ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json"):
        doc = json.loads((SCHEMAS / name).read_text())
        resources.append((RAW + name, Resource.from_contents(doc)))
    registry = Registry().with_resources(resources)
    main = json.loads((SCHEMAS / "manifest.schema.json").read_text())
    return jsonschema.Draft7Validator(main, registry=registry)


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_validates_against_slacks_schema() -> None:
    errors = sorted(_validator().iter_errors(_manifest()), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_the_validator_does_reject_a_broken_manifest() -> None:
    broken = _manifest()
    broken["features"]["slash_commands"][0]["command"] = "hitl"  # must start with "/"
    broken["display_information"]["name"] = "x" * 40  # at most 35
    assert list(_validator().iter_errors(broken))


def test_manifest_matches_what_the_bot_registers() -> None:
    m = _manifest()
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/hitl"]
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert "app_home_opened" in m["settings"]["event_subscriptions"]["bot_events"]
    assert "chat:write" in m["oauth_config"]["scopes"]["bot"]


def test_procfile_runs_the_bot_and_a_worker() -> None:
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert lines == {"web": "hitl bot", "worker": "hitl worker"}


def test_the_manifest_asks_for_the_scopes_visibility_and_email_lookup_need() -> None:
    """conversations.members (who may see a private request) and users.lookupByEmail."""
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert {"channels:read", "groups:read", "users:read", "users:read.email"} <= scopes
