"""The worker process, scheduling only: the timer ticker, the card-delivery pool and its
leases (calling bot.slack.delivery), webhooks, maintenance."""
