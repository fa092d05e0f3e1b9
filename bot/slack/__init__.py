"""Everything that talks to Slack: the Bolt app and its listeners, the Block Kit it renders
(`blocks`), and the delivery that posts and updates cards (`delivery`).

Nothing here serves agents over HTTP; that is `bot.gateway`. The two share only what sits
directly in `bot` (who may see a request, user groups, dashboard tokens).
"""
