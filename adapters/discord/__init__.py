"""The Discord adapter (discord.py): gateway events, slash commands and buttons onto the core."""
