"""Rewards behind one protocol (`base.Reward`): videos (B, F, 3, H, W) in [-1, 1] + prompts -> a dict
head -> (B,) scores. `registry` builds them from the plan's reward references and scores sums, joint
rewards and gates; `concurrent` runs several at once. See README.md in this folder."""
