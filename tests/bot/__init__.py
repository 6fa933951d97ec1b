"""Tests of the conversation core, mirroring bot/."""
