"""Gemini image generation in Discord, Slack and the terminal."""
