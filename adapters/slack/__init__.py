"""The Slack adapter (slack-bolt): events, slash commands and actions onto the core."""
