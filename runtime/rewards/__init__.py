"""Rewards behind one protocol: videos (B, F, 3, H, W) in [-1, 1] + prompts -> scores per head."""
