"""``python -m hitl_sandbox``: run the Slack Web API stand-in on its own (manual testing, demos)."""

from __future__ import annotations

from hitl_sandbox.server import main

if __name__ == "__main__":
    main()
