"""Example agents for the default grid world."""
