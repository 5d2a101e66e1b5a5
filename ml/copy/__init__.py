"""Email copy: approved blocks, providers (approved_blocks, openai_compatible), guardrails,
approval, rendering, and the per-person choice of an approved variant (docs/copy.md)."""
