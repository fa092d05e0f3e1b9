"""RQ workers: timers (timeouts, override windows, escalation) and Slack card delivery."""
