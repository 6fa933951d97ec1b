"""Entry: the one door adapters use, what a message is to the bot, and who may use it where."""
