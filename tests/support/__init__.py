"""Shared test support: binary lookup and throw-away servers on loopback."""
