"""Tests of bot.gemini."""
