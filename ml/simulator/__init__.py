"""Synthetic e-commerce e-mail audience: landing exports, dirty data and a campaign responder.

`generate_landing` writes the folder described by docs/data_contract.md plus a separate
oracle folder with the hidden truth; `SimulatedOutcomeSource` (in `responder`) answers a
planned campaign using the same hidden people.
"""

from ml.simulator.audience import GenerationSummary, generate_landing
from ml.simulator.config import CORRUPTION_KINDS, AudienceConfig, DirtyDataConfig

__all__ = ["CORRUPTION_KINDS", "AudienceConfig", "DirtyDataConfig", "GenerationSummary", "generate_landing"]
