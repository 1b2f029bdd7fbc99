"""Sampling from s = 1 to 0 over the shifted schedule: the ODE (g = 0) for evaluation, the SDE with
per-step log-probs for GRPO rollouts (ALGORITHMS.md §1).

A rollout stores every state x_k and log p(x_{k+1} | x_k); training recomputes the step mean under the
current weights from the stored, detached (x_k, x_{k+1}) (`recompute_logprob`). All noise comes from the
caller's torch.Generator, so a rollout is a function of (weights, prompts, generator state)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from runtime.algorithms.schedule import shifted_sigmas
from runtime.algorithms.sde import gaussian_logprob, noise_level, sde_step, step_mean

from .policy import TextCond, VideoPolicy


@dataclass
class Trajectory:
    states: list[torch.Tensor]  # T+1 latents (fp32): states[0] the initial noise, states[-1] the sample
    logps: torch.Tensor | None  # (B, T) log p(x_{k+1} | x_k), 0 on deterministic steps; None for the ODE
    mus: list[torch.Tensor]  # T step means (ViPO recomputes per-position log-probs from them)
    sigmas: torch.Tensor  # (T+1,) the schedule, from 1 to 0
    levels: list[float]  # the noise scale g of each step (eta for cps; 0 = deterministic)
    noise_kind: str = "flow_grpo"  # how a step's level makes its mean and std (sde.step_mean)

    @property
    def final(self) -> torch.Tensor:
        return self.states[-1]

    def step(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x_k, x_{k+1}, logp_k) of step k."""
        return self.states[k], self.states[k + 1], None if self.logps is None else self.logps[:, k]

    def stochastic_steps(self) -> list[int]:
        """The steps that carry a log-prob: the ones GRPO can train."""
        return [k for k, g in enumerate(self.levels) if g > 0]


def initial_noise(n: int, shape: tuple[int, ...], generator: torch.Generator | None = None, group: int = 1,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """(n, *shape) standard normal noise; with `group` > 1 each run of `group` consecutive samples shares
    one draw (GRPO's shared initial noise within a prompt's group)."""
    if n % group:
        raise ValueError(f"{n} samples do not split into groups of {group}")
    return _normal((n // group, *shape), generator).repeat_interleave(group, 0).to(device)


def _read(cfg, name: str):
    return cfg[name] if isinstance(cfg, dict) else getattr(cfg, name)


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance of a sampling job: the scale w and the unconditional (negative) text.
    The plan fills both (the recipe's, else the model catalogue's); `of` reads a job's config or pair
    source, `grpo` a GRPO stage's (its scale field is `guidance`)."""

    scale: float = 1.0
    negative_prompt: str = ""

    @classmethod
    def of(cls, cfg) -> "Guidance":
        """`cfg`: a typed job config or pair source (vpolang/jobconfig.py), or its plain dict."""
        return cls(float(_read(cfg, "guidance_scale")), _read(cfg, "negative_prompt"))

    @classmethod
    def grpo(cls, cfg) -> "Guidance":
        return cls(float(_read(cfg, "guidance")), _read(cfg, "negative_prompt"))

    @property
    def active(self) -> bool:
        return self.scale != 1.0

    def uncond(self, policy: VideoPolicy, n: int = 1) -> TextCond | None:
        """The negative prompt's conditioning (n rows), or None when guidance is off (one pass a step)."""
        return policy.encode_prompts([self.negative_prompt] * n) if self.active else None


OFF = Guidance()


def guided_velocity(policy: VideoPolicy, x: torch.Tensor, s: float, text: TextCond, uncond: TextCond | None = None,
                    guidance: float = 1.0, transformer=None) -> torch.Tensor:
    """The velocity at level s, with classifier-free guidance `v_u + w (v_c - v_u)` when an
    unconditional text is given and w != 1 (conditional and unconditional in one batched call)."""
    sigma = torch.full((x.shape[0],), float(s), device=x.device)
    if uncond is None or guidance == 1.0:
        return policy.velocity(x, sigma, text, transformer)
    if len(uncond) == 1 and x.shape[0] > 1:
        uncond = uncond.repeat(x.shape[0])
    both = policy.velocity(torch.cat([x, x]), torch.cat([sigma, sigma]), text.cat(uncond.to(text.embeds.device)),
                           transformer)
    v_cond, v_uncond = both.chunk(2)
    return v_uncond + guidance * (v_cond - v_uncond)


@torch.no_grad()
def sample_guided(policy: VideoPolicy, text: TextCond, noise: torch.Tensor, steps: int, guidance: Guidance,
                  **kwargs) -> Trajectory:
    """`sample` with a job's classifier-free guidance: what evaluation, on-policy and online candidates,
    GRPO rollouts and BPGO's prior samples all call."""
    return sample(policy, text, noise, steps, guidance=guidance.scale, uncond=guidance.uncond(policy), **kwargs)


@torch.no_grad()
def sample(policy: VideoPolicy, text: TextCond, noise: torch.Tensor, steps: int, noise_kind: str = "ode",
           level: float = 0.7, generator: torch.Generator | None = None, guidance: float = 1.0,
           uncond: TextCond | None = None, transformer=None, deterministic_last_step: bool = True,
           rows: tuple[slice, int] | None = None, sde_steps: frozenset[int] | None = None,
           prefix_group: int = 1) -> Trajectory:
    """Integrate from the initial `noise` (s = 1) to s = 0 in `steps` steps of the policy's shifted
    schedule. `noise_kind` `ode`, `flow_grpo` (level = a) or `dance` (level = eta). The last step is
    deterministic by default: nothing after it would remove the noise it adds, so the sample is its
    mean (and the step carries no log-prob). `rows` = (these rows, global row count): a data-parallel
    rank's share of a global batch draws the whole batch's step noise and keeps its rows, so its
    rollouts are the ones one process would sample. `sde_steps`: only these steps are stochastic, the
    others are ODE steps (windowed training, MixGRPO); None: every step but the deterministic last.
    `prefix_group` = G > 1: runs of G consecutive rows share their initial noise and prompt (GRPO's
    `shared_noise`), so before the first SDE step they are one ODE trajectory: it is computed once per
    run of rows and repeated (Flow-GRPO-Fast's branching from a shared prefix)."""
    sigmas = shifted_sigmas(steps, float(policy.spec["shift"]))  # every family fills it (plan or folder)
    x = noise.float()
    states, mus, levels, logps = [x], [], [], []
    branch = min(sde_steps, default=steps) if sde_steps is not None and prefix_group > 1 else 0
    if branch and x.shape[0] % prefix_group:
        raise ValueError(f"{x.shape[0]} rows do not split into runs of {prefix_group}")
    for k in range(steps):
        s, s_next = float(sigmas[k]), float(sigmas[k + 1])
        last = k == steps - 1 and deterministic_last_step
        outside = sde_steps is not None and k not in sde_steps
        g = 0.0 if last or outside else noise_level(noise_kind, s, float(sigmas[1]), a=level, eta=level)
        if k < branch:  # the shared ODE prefix: one velocity per run of rows
            heads = torch.arange(0, x.shape[0], prefix_group)
            v = guided_velocity(policy, x[heads], s, text.index(heads), _rows_of(uncond, heads), guidance,
                                transformer).repeat_interleave(prefix_group, 0)
        else:
            v = guided_velocity(policy, x, s, text, uncond, guidance, transformer)
        z = _step_noise(x.shape, generator, rows).to(x.device) if g > 0 else None
        x, mu, _, logp = sde_step(x, v, s, s_next, g, z, noise_kind)
        states.append(x)
        mus.append(mu)
        levels.append(g if logp is not None else 0.0)
        logps.append(logp if logp is not None else torch.zeros(x.shape[0], device=x.device))
    stacked = None if noise_kind == "ode" else torch.stack(logps, 1)
    return Trajectory(states, stacked, mus, sigmas, levels, noise_kind)


def step_logprob(policy: VideoPolicy, text: TextCond, x: torch.Tensor, x_next: torch.Tensor, s: float,
                 s_next: float, g: float, uncond: TextCond | None = None, guidance: float = 1.0,
                 transformer=None, noise_kind: str = "flow_grpo") -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x_next | x) of one step under the current weights, with gradients: (logp (B,), mu)."""
    v = guided_velocity(policy, x, s, text, uncond, guidance, transformer)
    mu, std = step_mean(noise_kind, x, v, s, s_next, g)
    return gaussian_logprob(x_next.detach(), mu, std), mu


def recompute_logprob(policy: VideoPolicy, traj: Trajectory, k: int, text: TextCond, rows=None,
                      uncond: TextCond | None = None, guidance: float = 1.0,
                      transformer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Step k of a stored rollout (optionally only `rows`) re-evaluated under the current weights:
    (logp, mu). With unchanged weights it equals the rollout's `logps[:, k]`."""
    if traj.levels[k] <= 0:
        raise ValueError(f"step {k} of this trajectory is deterministic and has no log-prob")
    x, x_next = traj.states[k], traj.states[k + 1]
    if rows is not None:
        x, x_next = x[rows], x_next[rows]
        text = text.index(rows)
        uncond = uncond.index(rows) if uncond is not None and len(uncond) > 1 else uncond
    return step_logprob(policy, text, x, x_next, float(traj.sigmas[k]), float(traj.sigmas[k + 1]), traj.levels[k],
                        uncond, guidance, transformer, traj.noise_kind)


def _rows_of(cond: TextCond | None, rows: torch.Tensor) -> TextCond | None:
    return cond.index(rows) if cond is not None and len(cond) > 1 else cond


def _step_noise(shape: tuple[int, ...], generator: torch.Generator | None, rows: tuple[slice, int] | None):
    if rows is None:
        return _normal(shape, generator)
    mine, total = rows
    return _normal((total, *shape[1:]), generator)[mine]


def _normal(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else "cpu"
    return torch.randn(shape, generator=generator, device=device)
