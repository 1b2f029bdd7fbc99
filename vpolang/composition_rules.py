"""Check-time rules of the GRPO reward -> advantage composition (docs/algorithms.md §S2)."""
from __future__ import annotations

from .diagnostics import Reporter


def _label(ref: dict) -> str:
    return ref["name"] + (f".{ref['head']}" if ref.get("head") else "")


def grpo_composition_rules(config: dict, spans: dict, default_span, rep: Reporter) -> bool:
    """E0340: under joint, self-paced weights act on the joint's heads, so its phases must be them.
    E0344-E0347: the 2026 options (docs/algorithms.md §S3) where a combination means nothing."""
    ok = _window_rules(config, spans, default_span, rep)
    sp, reward = config.get("self_paced"), config.get("reward") or {}
    if sp and reward.get("kind") == "joint":
        phases, heads = [_label(r) for r in sp["phases"]], [_label(r) for r in reward["rewards"]]
        if sorted(phases) != sorted(heads):
            rep.add("E0340", f"self_paced phases [{', '.join(phases)}] are not the joint's rewards "
                    f"[{', '.join(heads)}]", spans.get(("self_paced", "phases"), spans.get(("self_paced",), default_span)),
                    hint="under reward = joint(...) the curriculum weights the joint's heads: list the same rewards "
                         "in curriculum order")
            ok = False
    return ok


def _window_rules(config: dict, spans: dict, default_span, rep: Reporter) -> bool:
    ok = True
    window = config.get("window")
    if window:
        if ("train_fraction",) in spans:
            rep.add("E0344", "`train_fraction` with `with window`: the window's SDE steps are the trained steps, all "
                    "of them", spans[("train_fraction",)], hint="remove `train_fraction`, or size the window instead")
            ok = False
        policy = config.get("policy") or {}
        model = policy.get("spec") if policy.get("ref") == "model" else policy.get("base_model")
        steps = config.get("sample_steps") or (model or {}).get("sample_steps")
        if steps is not None and window["size"] > steps - 1:
            rep.add("E0344", f"a window of {window['size']} SDE steps does not fit {steps} sampling steps (the last "
                    "step is deterministic)", spans.get(("window", "size"), spans.get(("window",), default_span)),
                    hint=f"use at most {max(steps - 1, 1)} window steps or more `sample_steps`")
            ok = False
    if ("kl_space",) in spans and not config.get("kl"):
        rep.add("E0345", "`kl_space` without a KL term (kl = 0)", spans[("kl_space",)],
                hint="set `kl` (e.g. 0.01) or remove `kl_space`")
        ok = False
    if config.get("reward_as") == "win_rate" and config.get("bpgo"):
        rep.add("E0346", "`reward_as = win_rate` with `with bpgo`: every group's win rates average 0.5, so a "
                "per-prompt prior says nothing", spans.get(("bpgo",), default_span),
                hint="drop `with bpgo`, or score the rewards (`reward_as = score`)")
        ok = False
    ok = _nft_rules(config, spans, default_span, rep) and ok
    if config.get("noise") == "cps" and (config.get("noise_level") or 0) > 1:
        rep.add("E0347", f"cps noise_level {config['noise_level']} is outside (0, 1]",
                spans.get(("noise_level",), default_span), hint="the CPS std is s' sin(eta pi / 2): eta in (0, 1]")
        ok = False
    return ok


NFT_WITHOUT = {  # what only the ratio loss over SDE steps' log-probs means
    "guard": "GRPO-Guard normalises a log-ratio", "clip_range": "the clip acts on a ratio",
    "kl_space": "its KL is the velocity KL (no transition mean)", "window": "a window chooses SDE steps to train",
    "vipo": "ViPO maps weight a per-position log-ratio", "guidance": "it is CFG-free"}


def _nft_rules(config: dict, spans: dict, default_span, rep: Reporter) -> bool:
    """E0348: DiffusionNFT has no trajectory log-probs; GRPO has nothing but them."""
    ok = True
    if config.get("objective") != "nft":
        if config.get("noise") == "ode":
            rep.add("E0348", "`noise = ode` rollouts carry no log-probs for the GRPO ratio", spans.get(("noise",), default_span),
                    hint="use an SDE (flow_grpo, dance, cps), or `objective = nft`")
            ok = False
        if ("nft_beta",) in spans:
            rep.add("E0348", "`nft_beta` without `objective = nft`", spans[("nft_beta",)],
                    hint="set `objective = nft` or remove `nft_beta`")
            ok = False
        return ok
    for field, why in NFT_WITHOUT.items():
        if (field,) in spans and not (field == "guidance" and config.get("guidance") == 1.0):
            rep.add("E0348", f"`{field}` with `objective = nft`: {why}", spans[(field,)],
                    hint=f"remove `{field}` (DiffusionNFT trains on clean samples, without log-probs)")
            ok = False
    return ok


def _scores_as(ref: dict) -> tuple:
    """What a reward reference scores: a multi-head reward without a head scores its `overall`."""
    return ref["name"], ref.get("head") or ("overall" if ref.get("heads") else None)


def _pairwise(ref: dict) -> bool:
    spec = ref.get("spec") or {}
    return spec.get("kind") == "vlm_judge" and bool(spec.get("pairwise"))


def pair_source_rules(kind: str, config: dict, sources: list[dict], span, rep: Reporter) -> bool:
    """E0342: RWR weighs on_policy samples by its own `reward`: the source's judging fields must agree.
    E0343: a pairwise judge only compares two videos: it can verify pairs (swap_check), not rank them."""
    from .schema.entities import OnPolicy

    ok = True
    for src in sources:
        if src.get("kind") not in ("on_policy", "online"):
            continue
        judges = src.get("judges") or []
        if kind == "rwr" and src["kind"] == "on_policy":
            if [_scores_as(j) for j in judges] != [_scores_as(config["reward"])]:
                rep.add("E0342", "on_policy(...) inside rwr: the samples are weighted by the stage's `reward`, so "
                        "`judges` must be that one reward", span, hint="write `judges = [<the stage's reward>]`")
                ok = False
            pairing = [f for f in ("pick", "margin", "swap_check", "labels") if src[f] != OnPolicy.model_fields[f].default]
            if pairing:
                rep.add("E0342", f"on_policy(...) inside rwr builds no pairs: {', '.join(pairing)} would be ignored",
                        span, hint="remove " + ", ".join(f"`{f}`" for f in pairing))
                ok = False
            continue
        pairwise = [j["name"] for j in judges if _pairwise(j)]
        if pairwise and (len(pairwise) == len(judges) or not src.get("swap_check")):
            rep.add("E0343", f"the pairwise judge `{pairwise[0]}` only compares two videos: it cannot score "
                    "candidates", span, hint="add a pointwise judge and `swap_check = true` (on_policy) to let it "
                    "verify the pairs, or set `pairwise = false` on the judge")
            ok = False
    return ok


def validation_rules(config: dict, spans: dict, default_span, rep: Reporter) -> bool:
    """E0350: `monitor` must be one of the validated `metrics`. E0351: keep_best keeps the validated
    weights, but with `ema` the output is the average, which validation never sampled."""
    v = config.get("validate")
    if not v:
        return True
    ok = True
    where = spans.get(("validate",), default_span)
    monitor = v.get("monitor")
    if monitor is not None and _scores_as(monitor) not in [_scores_as(m) for m in v["metrics"]]:
        rep.add("E0350", f"validate's monitor `{_label(monitor)}` is not one of its metrics "
                f"[{', '.join(_label(m) for m in v['metrics'])}]", spans.get(("validate", "monitor"), where))
        ok = False
    if v.get("keep_best") and config.get("ema"):
        rep.add("E0351", "`keep_best` with `ema`: the stage's output would be the average, which validation "
                "never sampled", spans.get(("validate", "keep_best"), where))
        ok = False
    steps = config.get("steps")
    if v.get("patience") and steps and steps // v["every"] <= v["patience"]:
        rep.add("E0352", f"early stopping can never act: {steps // v['every']} validation(s) in {steps} steps "
                f"(every {v['every']}) leave no room for patience {v['patience']}",
                spans.get(("validate", "patience"), where))
        ok = False
    return ok
