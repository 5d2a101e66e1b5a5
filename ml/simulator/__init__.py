"""A simulated e-commerce shop and its customers, stepped day by day (docs/loop.md).

`generate_landing` writes the history (the initial export of docs/data_contract.md) plus a
separate oracle folder with the hidden truth; `world.World.step` then runs each live day with
the pipeline's planned sends and lands the day's drop. Both use the same rules (`engine`).
"""

from ml.simulator.audience import GenerationSummary, generate_landing
from ml.simulator.config import CORRUPTION_KINDS, AudienceConfig, DirtyDataConfig

__all__ = ["CORRUPTION_KINDS", "AudienceConfig", "DirtyDataConfig", "GenerationSummary", "generate_landing"]
