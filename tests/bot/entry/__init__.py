"""Tests of bot.entry."""
