"""The Slack side of hitl-router: Block Kit cards, modals, listeners and the Slack gateway."""
