"""Tests of bot.turns."""
