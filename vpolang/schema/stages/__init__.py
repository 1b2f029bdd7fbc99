"""One schema per stage kind; this registry is the only list of them."""
from __future__ import annotations

from .dpo import Dpo
from .evaluate import Evaluate
from .grpo import Grpo
from .kto import Kto
from .reward_model import RewardModel
from .rwr import Rwr
from .sft import Sft

STAGES = {s.model_fields["kind"].default: s for s in (Sft, Grpo, Dpo, Kto, Rwr, RewardModel, Evaluate)}
# What a stage's output is, for references to it.
PRODUCES = {"sft": "policy", "grpo": "policy", "dpo": "policy", "kto": "policy", "rwr": "policy",
            "reward_model": "reward_model", "evaluate": "metrics"}


ALL_MODIFIERS = sorted({m for s in STAGES.values() for m in s.modifiers})
