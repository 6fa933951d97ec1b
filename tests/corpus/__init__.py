"""The bad-input corpus: files users send that the bot must answer clearly (see cases.json)."""
