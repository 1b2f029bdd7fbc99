"""How much of a GRPO gradient is signal, on the std.shapes world (CPU).

Issue 5 asks for GRPO from an SFT checkpoint to raise held-out alignment within CI time. This script
measures what that costs at this scale, with the trainer's own functions (sampler, rewards,
`grpo.compute_advantages`, `grpo.update`):

1. Gradient agreement. K rollout batches of the same prompts, independent noise; the mean pairwise
   cosine of their GRPO gradients estimates |signal|^2 / (|signal|^2 + |noise|^2) of one batch. For a
   Gaussian-policy gradient it should be about N rho^2 / D (N rollouts, D latent elements per step,
   rho^2 the share of a reward's variance that is linear in the injected noise); the `brightness`
   probe (a reward exactly linear in the pixels, rho^2 ~ 1) checks that law.
2. Training against a control. GRPO at the quickstart's settings, with the real advantages and with
   the same advantages shuffled across the batch (no signal, the same update sizes), scored paired
   on held-out prompts and noise. If both lose the same, the loss comes from the optimiser's noise.
3. Longer, gentler training: `--arm LR:STEPS[:shuffled]` (repeatable) and `--eval-every`, to find
   what it costs for the signal to win.

    python bench/shapes_grpo_signal.py --out bench/results/shapes_grpo_signal.json   # ~12 min, 2 cores
    python bench/shapes_grpo_signal.py --skip-probes --eval-every 64 --arm 1e-5:64 --arm 1e-5:64:shuffled \
        --arm 2e-5:256 --out bench/results/shapes_grpo_long.json                     # ~40 min
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from versions import versions  # noqa: E402
from runtime.models.families import build_policy  # noqa: E402
from runtime.models.sampler import sample  # noqa: E402
from runtime.shapes import rewards as shapes_rewards  # noqa: E402
from runtime.shapes.model import TINY_DIT  # noqa: E402
from runtime.shapes.world import prompts as shapes_prompts  # noqa: E402
from runtime.trainers import grpo  # noqa: E402
from runtime.trainers.updater import TorchUpdater  # noqa: E402

# The quickstart's SFT, trained longer (800 steps: held-out alignment ~0.30 instead of ~0.05, so groups
# disagree on most prompts), and its GRPO stage; the plan supplies every GRPO default.
RECIPE = """vpo 0.1
use std.shapes
model base = shapes.tiny_dit
stage sft = sft(base) {
  data  = shapes.videos(n = 512, seed = 0)
  steps = 800
  batch = 16
  lr    = 3e-4
}
stage rl = grpo(sft) {
  prompts    = shapes.prompts(n = 64, split = train)
  group_size = 8
  batch      = 8
  steps      = 16
  lr         = 1e-4
  kl         = 0.01
  reward     = shapes.alignment
}
"""

REWARDS = {"alignment": shapes_rewards.alignment,
           "brightness": lambda videos, prompts: videos.float().mean((1, 2, 3, 4))}

PROBES = {  # name: (reward, GRPO config overrides)
    "alignment": ("alignment", {}),
    "alignment, shared initial noise": ("alignment", {"shared_noise": True}),
    "alignment, shared noise, a = 0.3": ("alignment", {"shared_noise": True, "noise_level": 0.3}),
    "alignment, shared noise, a = 0.3, 16 groups": ("alignment", {"shared_noise": True, "noise_level": 0.3,
                                                                   "batch": 16}),
    "brightness (linear reward)": ("brightness", {}),
}


class GradientOnly:
    """An updater that keeps the gradient instead of stepping (grpo.update's contract)."""

    needs_uniform_backwards = False

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        return 0.0


def prepare(workdir: Path) -> tuple[Path, dict]:
    recipe = workdir / "signal.vpo"
    recipe.write_text(RECIPE)
    vpo = [sys.executable, "-m", "vpolang.cli"]
    subprocess.run([*vpo, "run", str(recipe), "--run-dir", str(workdir / "run"), "--only", "sft", "--progress", "quiet"],
                   check=True, cwd=ROOT)
    subprocess.run([*vpo, "plan", str(recipe), "-o", str(workdir / "plan.json")], check=True, cwd=ROOT,
                   capture_output=True)
    jobs = json.loads((workdir / "plan.json").read_text())["jobs"]
    config = next(j["config"] for j in jobs if j["stage"] == "rl")
    folder = next((workdir / "run" / "sft").glob("*/artifacts/policy"))
    return folder, config


def load(folder: Path):
    policy = build_policy(dict(TINY_DIT), seed=0)
    policy.load(folder)
    return policy


def rollouts(policy, cfg: dict, prompts: list[str], gen: torch.Generator):
    n = len(prompts)
    noise = grpo.initial_noise(cfg, n, policy.latent_shape(cfg["frames"], *cfg["resolution"]), gen)
    text = policy.encode_prompts(prompts)
    policy.eval()
    traj = sample(policy, text, noise, cfg["sample_steps"], cfg["noise"], cfg["noise_level"], gen, rows=(slice(0, n), n))
    return traj, text, policy.decode(traj.final)


def advantages(cfg, reward, prompts):
    adv, keep, _ = grpo.compute_advantages(cfg, grpo.Scores.of_reward(reward, "r"), prompts, None)
    return adv, keep


def gradient_agreement(folder: Path, cfg: dict, reward_name: str, batches: int) -> dict:
    policy = load(folder)
    cfg = {**cfg, "kl": 0.0}  # the policy term alone
    prompts = [p for p in shapes_prompts(cfg["batch"], "train", seed=3) for _ in range(cfg["group_size"])]
    params = [p for p in policy.transformer.parameters() if p.requires_grad]
    grads, within = [], []
    for b in range(batches):
        gen = torch.Generator().manual_seed(1000 + b)
        traj, text, videos = rollouts(policy, cfg, prompts, gen)
        reward = REWARDS[reward_name](videos, prompts)
        within.append(float(reward.view(-1, cfg["group_size"]).std(1).mean()))
        adv, keep = advantages(cfg, reward, prompts)
        policy.train()
        policy.transformer.zero_grad()
        grpo.update(policy, GradientOnly(), cfg, traj, text, None, adv, keep, None, cfg["clip_range"], gen,
                    slice(0, len(prompts)))
        grads.append(torch.cat([p.grad.flatten() for p in params]))
    cos = {(i, j): float(torch.nn.functional.cosine_similarity(grads[i], grads[j], dim=0))
           for i, j in itertools.combinations(range(batches), 2)}
    mean, se = mean_and_jackknife_se(cos, batches)
    n, d = len(prompts), math.prod(policy.latent_shape(cfg["frames"], *cfg["resolution"]))
    return {"cosine": mean, "cosine_se": se, "rollouts": n, "latent_elements": d, "rho2_estimate": mean * d / n,
            "within_group_reward_sd": sum(within) / len(within)}


def mean_and_jackknife_se(pairs: dict[tuple[int, int], float], k: int) -> tuple[float, float]:
    """Mean over batch pairs, and its standard error by leaving one batch out at a time (the pairs
    share batches, so they are not independent)."""
    mean = sum(pairs.values()) / len(pairs)
    loo = [statistics.fmean(v for (i, j), v in pairs.items() if drop not in (i, j)) for drop in range(k)]
    centre = statistics.fmean(loo)
    return mean, math.sqrt((k - 1) / k * sum((m - centre) ** 2 for m in loo))


def held_out(policy, cfg: dict, n: int = 256) -> torch.Tensor:
    prompts = shapes_prompts(n, "test", seed=7)
    noise = torch.randn((n, *policy.latent_shape(cfg["frames"], *cfg["resolution"])),
                        generator=torch.Generator().manual_seed(123))
    policy.eval()
    with torch.no_grad():
        videos = policy.decode(sample(policy, policy.encode_prompts(prompts), noise, cfg["sample_steps"]).final)
    return shapes_rewards.alignment(videos, prompts)


def train(folder: Path, cfg: dict, shuffle: bool, eval_every: int = 0, seed: int = 0) -> tuple[torch.Tensor, list[float], list]:
    """The GRPO stage's loop (one update per batch), optionally with the advantages shuffled; held-out
    alignment every `eval_every` steps as well as at the end. `seed` changes the rollout noise and the
    order of the prompts (the replicate), not the checkpoint or the held-out set."""
    policy = load(folder)
    policy.refresh_reference()
    updater = TorchUpdater(policy.transformer, cfg)
    pool = shapes_prompts(64, "train", seed=0)
    pool = [pool[j] for j in torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))] if seed else pool
    shuffler = torch.Generator().manual_seed(999 + seed)
    rewards, curve = [], []
    for i in range(cfg["steps"]):
        gen = torch.Generator().manual_seed(10_000 + 1_000_000 * seed + i)
        prompts = [pool[(i * cfg["batch"] + j) % len(pool)] for j in range(cfg["batch"]) for _ in range(cfg["group_size"])]
        traj, text, videos = rollouts(policy, cfg, prompts, gen)
        reward = shapes_rewards.alignment(videos, prompts)
        rewards.append(float(reward.mean()))
        adv, keep = advantages(cfg, reward, prompts)
        if shuffle:
            adv = adv[torch.randperm(len(adv), generator=shuffler)]
        policy.train()
        grpo.update(policy, updater, cfg, traj, text, None, adv, keep, None, cfg["clip_range"], gen,
                    slice(0, len(prompts)))
        if eval_every and (i + 1) % eval_every == 0 and i + 1 < cfg["steps"]:
            curve.append((i + 1, float(held_out(policy, cfg).mean())))
    return held_out(policy, cfg), rewards, curve


def paired(after: torch.Tensor, before: torch.Tensor) -> dict:
    d = after - before
    return {"mean_after": float(after.mean()), "gain": float(d.mean()), "t": float(d.mean() / (d.std() / math.sqrt(len(d))))}


def parse_arm(text: str) -> tuple[float, int, bool]:
    lr, steps, *rest = text.split(":")
    if rest not in ([], ["shuffled"]):
        raise argparse.ArgumentTypeError(f"expected LR:STEPS or LR:STEPS:shuffled, got {text!r}")
    return float(lr), int(steps), bool(rest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=20, help="independent rollout batches per probe")
    ap.add_argument("--skip-probes", action="store_true")
    ap.add_argument("--arm", type=parse_arm, action="append",
                    help="a training arm, LR:STEPS or LR:STEPS:shuffled (repeatable; default: the quickstart's "
                         "1e-4:16 with real and with shuffled advantages)")
    ap.add_argument("--seed", type=int, default=0, help="training replicate: rollout noise and prompt order")
    ap.add_argument("--eval-every", type=int, default=0, help="held-out alignment every N steps too")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.arm = args.arm if args.arm is not None else [(1e-4, 16, False), (1e-4, 16, True)]
    torch.set_num_threads(2)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        folder, cfg = prepare(Path(tmp))
        base = held_out(load(folder), cfg)
        result = {"date": datetime.date.today().isoformat(), "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, CPU)",
                  "versions": versions(), "command": "python bench/shapes_grpo_signal.py " + " ".join(sys.argv[1:]),
                  "sft_held_out_alignment": float(base.mean()), "probes": {}, "training": {}}
        for name, (reward, over) in ({} if args.skip_probes else PROBES).items():
            result["probes"][name] = row = gradient_agreement(folder, {**cfg, **over}, reward, args.batches)
            print(f"{name:48s} cosine {row['cosine']:+.4f} +- {row['cosine_se']:.4f} "
                  f"N {row['rollouts']} D {row['latent_elements']} rho2 ~ {row['rho2_estimate']:.2f}", flush=True)
        for lr, steps, shuffle in args.arm:
            arm = f"lr {lr:g}, {steps} steps, {'shuffled' if shuffle else 'real'} advantages"
            arm += f", seed {args.seed}" if args.seed else ""
            after, rewards, curve = train(folder, {**cfg, "lr": lr, "steps": steps}, shuffle, args.eval_every, args.seed)
            result["training"][arm] = {**paired(after, base), "rollouts": steps * cfg["batch"] * cfg["group_size"],
                                       "held_out_curve": curve, "rollout_reward": rewards}
            print(f"{arm:44s} held-out alignment {float(base.mean()):.4f} -> {float(after.mean()):.4f} "
                  f"(paired t {result['training'][arm]['t']:+.1f}) curve {curve}", flush=True)
    result["seconds"] = round(time.time() - started)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
