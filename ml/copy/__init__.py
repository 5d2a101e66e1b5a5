"""Email copy: approved blocks, composed variants, guardrails, per-person choice."""
