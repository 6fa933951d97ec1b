"""Platform adapters: translate platform events to the neutral vocabulary and back."""
