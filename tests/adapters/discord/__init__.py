"""Discord: the real discord.py against a fake gateway and REST API."""
