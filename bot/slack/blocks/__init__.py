"""Pure Block Kit: cards, modals and the escaping of agent text. No I/O, no Redis, no Slack calls."""
