"""Tests of bot.text."""
