"""An agent process that holds only an API key: `python -m tests.remote.agent`.

Its environment has HITL_API_URL and HITL_API_KEY and no Redis setting. It files a gate
request, prints its id, waits for the decision and prints it, one JSON line each.
"""

from __future__ import annotations

import json

from hitl import Approvals


def main() -> None:
    with Approvals() as approvals:
        handle = approvals.request(
            action="purge_table", summary="Purge the events table", params={"table": "events"}, mode="gate",
            agent="billing-agent",
        )
        print(json.dumps({"id": handle.id, "client": type(approvals).__name__}), flush=True)
        decision = handle.wait(timeout=60)
        print(json.dumps(decision.model_dump(mode="json")), flush=True)


if __name__ == "__main__":
    main()
