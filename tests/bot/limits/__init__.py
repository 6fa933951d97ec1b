"""Tests of bot.limits."""
