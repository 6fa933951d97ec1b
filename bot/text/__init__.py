"""Text: every sentence the bot says, inline flags, and validating the settings people type."""
