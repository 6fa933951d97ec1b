"""The fault and abuse suite: faults, crashes, load and bad input against `python -m bot`."""
