"""Tests of bot.images."""
