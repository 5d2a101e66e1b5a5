"""Decisioning: who gets which email, with its full trace."""
