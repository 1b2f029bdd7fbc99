"""Every refusal the runtime can still make after `vpo plan` accepted a recipe, and why it cannot be made
earlier. spec/language.md §10 is rendered from this table (vpolang/specgen.py), and
tests/runtime/test_runtime_refusals.py checks it against the code: every `raise JobError(...)` and
`unsupported(...)` under runtime/ is listed here (by module and a fragment of its source), and every
entry still names one.

Kinds:
- `guard`: the preflight or the checker rejects it at the recipe line (the code says which); the
  runtime keeps the check for plans edited by hand, so a broken plan stops before any work.
- `files`: depends on the contents of files where the job runs (weights, data, saved models); `vpo
  check` reads what it can see (JSON configs, data files on this machine: E04xx), not the cluster's.
- `data`: depends on what a job computes (scores, labels, losses), known only once it ran.
- `machine`: depends on the machine or the run directory the job runs on.
- `plan`: a plan.json that does not fit this runtime (another version, edited by hand).
Torch-free: the compiler renders it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    module: str  # the runtime module raising it
    says: str  # a fragment of the raise's source text
    kind: str  # guard | files | data | machine | plan
    why: str  # why it can only fail at run time (guards: the check-time code that catches it first)


KINDS = ("guard", "files", "data", "machine", "plan")

REFUSALS: tuple[Refusal, ...] = (
    # ---- guards: rejected at the recipe line first
    Refusal("runtime/trainers/common.py", "is not supported by this runtime yet", "guard",
            "the helper the guards below raise through"),
    Refusal("runtime/trainers/common.py", "compile with zero_stage = 3", "guard", "E0311 at the recipe line"),
    Refusal("runtime/trainers/common.py", '"ema", "ZeRO-3 partitions', "guard", "E0312 at the recipe line"),
    Refusal("runtime/trainers/dpo.py", "online pairs on several processes", "guard", "E0313 at the recipe line"),
    Refusal("runtime/trainers/dpo.py", "mixed_resolution with online pairs", "guard", "E0314 at the recipe line"),
    Refusal("runtime/trainers/dpo.py", "with LoRA under zero_stage = 3", "guard", "E0331 at the recipe line"),
    Refusal("runtime/trainers/dpo.py", "are not offline", "guard",
            "the schema admits no other pair source; a hand-edited plan"),
    Refusal("runtime/trainers/grpo_advantages.py", "are not the joint's rewards", "guard", "E0340 at the recipe line"),
    Refusal("runtime/trainers/judge.py", "a pairwise judge only verifies pairs", "guard", "E0343 at the recipe line"),
    Refusal("runtime/rewards/vlm_judge.py", "is a pairwise judge (pairwise = true)", "guard",
            "E0316 at the recipe line"),
    Refusal("runtime/trainers/kto.py", "`nll_real` needs `real` videos", "guard", "E0301 at the recipe line"),
    Refusal("runtime/trainers/synthesize.py", "unknown negative", "guard",
            "the schema admits reverse, shuffle and freeze only; a hand-edited plan"),
    Refusal("runtime/rewards/base.py", "has several heads", "guard",
            "E0207 at the recipe line (a multi-head reward used without a head)"),
    Refusal("runtime/rewards/base.py", "has no head", "guard", "E0212 at the recipe line"),
    Refusal("runtime/rewards/vlm.py", "has no runtime adapter", "guard",
            "every family the schema admits has an adapter (VILA and LLaVA through transformers' Llava "
            "classes); a hand-edited plan"),
    Refusal("runtime/rewards/registry.py", "has no runtime implementation", "guard",
            "every reward kind the schema admits has one; a hand-edited plan"),
    Refusal("runtime/shapes/world.py", "shapes.prompts: n =", "guard", "the schema's bound on `n` (E0203)"),
    Refusal("runtime/shapes/data.py", "shapes.videos: n =", "guard", "the schema's bound on `n` (E0203)"),
    Refusal("runtime/main.py", "trainer runs in one process, but this job was", "guard",
            "lowering places one-process kinds on one GPU (E0330 for `nodes`); a hand-edited placement"),
    Refusal("runtime/rewards/base.py", "takes videos shaped", "guard",
            "an internal contract between trainers and rewards, not reachable from a recipe"),
    Refusal("runtime/rewards/base.py", "videos but", "guard", "an internal contract, not reachable from a recipe"),
    Refusal("runtime/rewards/base.py", "got an empty batch", "guard", "an internal contract, not reachable from a recipe"),
    # ---- files where the job runs
    Refusal("runtime/trainers/common.py", "raise JobError(str(exc)) from exc", "files",
            "the model folder (or its weights) is missing where the job runs: `vpo check` reads only the "
            "JSON of a folder it can see (E0320-E0322, E0407)"),
    Refusal("runtime/trainers/kto.py", "raise JobError(str(exc)) from exc", "files",
            "a labels file unreadable or malformed where the job runs (E04xx where `vpo check` sees it)"),
    Refusal("runtime/trainers/reward_model.py", "{cfg.pairs.path}: {exc}", "files",
            "a pairs file unreadable or malformed where the job runs (E04xx where `vpo check` sees it)"),
    Refusal("runtime/trainers/reward_model.py", "needs `path`: a local folder", "files",
            "W0305 warns at the recipe line; the catalogue leaves paths for the recipe"),
    Refusal("runtime/trainers/reward_model.py", "backbone folder", "files", "the folder exists only on the cluster"),
    Refusal("runtime/rewards/vlm.py", "needs the weights of", "files", "W0305 warns; the path is the cluster's"),
    Refusal("runtime/rewards/vlm.py", "holds a `{config.model_type}` model", "files",
            "E0320 where `vpo check` sees the folder; otherwise only its config.json says"),
    Refusal("runtime/rewards/vlm.py", "holds a `{model_type}` model", "files",
            "E0320 where `vpo check` sees the folder; otherwise only its config.json says"),
    Refusal("runtime/rewards/registry.py", "is produced by the reward_model stage", "files",
            "the stage's output folder is missing (the upstream job did not run)"),
    Refusal("runtime/rewards/registry.py", "and its `path` is not set", "files", "W0305 warns at the recipe line"),
    Refusal("runtime/rewards/registry.py", "is not a folder (looked at", "files", "the path is the cluster's"),
    Refusal("runtime/rewards/backbones.py", "is not a local model folder", "files",
            "a backbone name is a folder where the job runs (W0302 when the plan cannot see it)"),
    Refusal("runtime/rewards/clip.py", "aesthetic predictor: {path} is missing", "files",
            "the head file lives in the CLIP folder on the cluster"),
    Refusal("runtime/rewards/clip.py", "expected a linear head", "files", "the head's shapes are in the weights file"),
    Refusal("runtime/rewards/vlm_judge.py", "has no single token for", "files",
            "the tokenizer's vocabulary is in the judge model's folder"),
    Refusal("runtime/rewards/video_reward_model.py", "is not a saved video reward model", "files",
            "the folder's contents"),
    Refusal("runtime/rewards/video_reward_model.py", "this runtime reads", "files", "the saved model's format file"),
    Refusal("runtime/rewards/video_reward_model.py", "the recipe names heads", "files",
            "the saved model's heads are in its folder"),
    Refusal("runtime/context.py", "is missing at", "files", "an upstream job's output is missing from the run directory"),
    Refusal("runtime/context.py", "placement.track: {problem}", "machine",
            "a tracker's package (vpo[track]) missing where the job runs; `vpo run` checks the machine it "
            "runs on before starting, not a cluster's nodes"),
    # ---- what the job computes
    Refusal("runtime/trainers/kto.py", "the labels are numeric scores", "data",
            "labels produced by a judge job or read from a file: their type is known when read"),
    Refusal("runtime/trainers/kto.py", "every labelled video is", "data", "the labels' balance is known when read"),
    Refusal("runtime/trainers/judge.py", "no pairs (the judges tied", "data", "the judges' scores of generated videos"),
    Refusal("runtime/trainers/synthesize.py", "no synthetic pair could be made", "data",
            "whether clips are static is known once they are read"),
    Refusal("runtime/models/guidance.py", "is not differentiable", "data",
            "E0324 for the rewards known to have no gradient; a model-based reward's graph is known when it runs"),
    Refusal("runtime/context.py", "became {value} at step", "data", "a non-finite loss or gradient during training"),
    Refusal('runtime/rewards/aesthetic_mlp.py', 'linear layers at positions', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/aesthetic_mlp.py', 'unexpected tensors', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/aesthetic_mlp.py', 'takes {weight.shape[1]} features', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/aesthetic_mlp.py', 'the predictor gives 1', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/aesthetic_mlp.py', '{path} is missing', 'files',
            'the predictor file on the machine the job runs on'),
    Refusal('runtime/rewards/aesthetic_mlp.py', 'is not a plain tensor state dict', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/aesthetic_mlp.py', 'is not a state dict of tensors', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/clip.py', 'is not a file (looked at', 'files',
            'the checkpoint file on the machine the job runs on'),
    Refusal('runtime/rewards/clip.py', '-d embeddings; this CLIP model', 'files',
            'the widths of two weight files, read when loaded'),
    Refusal('runtime/rewards/open_clip_layout.py', 'not a torch state dict vpo can read', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/open_clip_layout.py', 'expected a state dict of tensors', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/open_clip_layout.py', 'not open_clip CLIP weights', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/open_clip_layout.py', 'has no transformers CLIP counterpart")', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/open_clip_layout.py', '(layer scale and other open_clip-only', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/open_clip_layout.py', 'does not fit the CLIP model of its folder', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/released.py', 'the recipe names heads', 'files',
            "the release's eval_dim, in its model config where the job runs"),
    Refusal('runtime/rewards/videoalign.py', 'not a readable VideoAlign model config', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'section is missing', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'has no "', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'expected a state dict of tensors', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'holds neither', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'has no matching lora_B', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'LoRA tensors vpo cannot merge', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'reward tokens for', 'files',
            'the prompt template file and tokenizer of the release'),
    Refusal('runtime/rewards/videoalign.py', 'holds LoRA deltas over', 'files',
            'whether the release is an adapter is in its files; W0305 warns when the base has no `path`'),
    Refusal('runtime/rewards/videoalign.py', 'reward_token `{pooling}`', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'the tokenizer lacks the reward tokens', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'no `rm_head.weight`', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'tensors that do not fit the base model', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/videoalign.py', 'rm_head has {head_weight.shape[0]} outputs', 'files',
            "the released checkpoint's tensors and config, read where the job runs (never downloaded)"),
    Refusal('runtime/rewards/plugin.py', 'the plugin returned one score', 'data',
            "what the user's code returns"),
    Refusal('runtime/rewards/plugin.py', 'the plugin returned heads', 'data',
            "what the user's code returns"),
    Refusal('runtime/rewards/plugin.py', "the plugin's score returned", 'data',
            "what the user's code returns"),
    Refusal('runtime/rewards/plugin.py', 'the plugin has {list(impl.heads)}', 'data',
            "the heads the user's code declares when built"),
    Refusal('runtime/rewards/served.py', 'the server gave {got}', 'data',
            "the server's answers"),
    Refusal('runtime/rewards/served.py', 'not a finite number', 'data',
            "the server's answers"),
    Refusal('runtime/rewards/served.py', 'has no `scores`', 'data',
            "the server's answers"),
    Refusal('runtime/rewards/served.py', 'the server gave named scores', 'data',
            "the server's answers"),
    Refusal('runtime/rewards/served.py', 'the server gave no scores for heads', 'data',
            "the server's answers"),
    Refusal('runtime/rewards/served.py', 'gave no choices', 'data',
            "the judge server's answers"),
    Refusal('runtime/rewards/served.py', 'with no yes/no log-probabilities', 'data',
            'how the judge server was started (log-probabilities on)'),
    Refusal("runtime/trainers/common.py", "compile with sequence_parallel", "guard", "E0332 at the recipe line"),
    Refusal("runtime/trainers/common.py", 'f"sequence_parallel = {k}"', "guard",
            "E0332 at the recipe line (degree vs processes, heads and the family's context-parallel plan)"),
    Refusal("runtime/rewards/registry.py", "its spec does not match the", "plan",
            "a plan.json whose reward spec was edited by hand (`vpo plan` writes valid ones)"),
    # ---- the machine and the run directory
    Refusal("runtime/shapes/data.py", "more than this machine's", "machine", "the memory of the machine the job runs on"),
    Refusal("runtime/executors/local.py", "the local executor runs on this machine only", "machine",
            "`vpo run --executor local` on a multi-node placement"),
    Refusal("runtime/executors/local.py", "GPUs and this machine has", "machine", "the GPUs of the machine it runs on"),
    Refusal("runtime/trainers/updater.py", "fp32 master tensors for", "machine",
            "a checkpoint in the run directory written by another model or trainable set"),
    Refusal("runtime/trainers/updater.py", "the checkpoint was written with ZeRO stage", "machine",
            "a checkpoint written with another ZeRO stage or number of processes"),
    Refusal("runtime/trainers/updater.py", "the checkpoint's optimiser state was written by", "machine",
            "a checkpoint written by another updater"),
    Refusal("runtime/registry.py", "no trainer for `{kind}` jobs;", "machine", "an installation without that trainer"),
    Refusal("runtime/registry.py", "is not there", "machine", "an installation missing a trainer module"),
    Refusal('runtime/rewards/plugin.py', 'entry point named', 'machine',
            'the packages installed where the job runs'),
    Refusal('runtime/rewards/plugin.py', 'importing `{module_name}`', 'machine',
            "the user's code, imported only where the job runs (the compiler checks its name's syntax, E0224)"),
    Refusal('runtime/rewards/plugin.py', 'has no `{attr}`', 'machine',
            "the user's code, imported only where the job runs (the compiler checks its name's syntax, E0224)"),
    Refusal('runtime/rewards/plugin.py', 'building the plugin', 'machine',
            "the user's code, imported only where the job runs (the compiler checks its name's syntax, E0224)"),
    Refusal('runtime/rewards/plugin.py', 'has no `score(videos, prompts)`', 'machine',
            "the user's code, imported only where the job runs (the compiler checks its name's syntax, E0224)"),
    Refusal('runtime/rewards/served.py', '(its api_key_env)', 'machine',
            "the environment of the job's machine"),
    Refusal('runtime/rewards/served.py', 'answered with text that is not JSON', 'machine',
            "the server's answers, known when it is asked"),
    Refusal('runtime/rewards/served.py', 'refused the request', 'machine',
            "whether the server is reachable from the job's machine"),
    Refusal('runtime/rewards/served.py', 'time(s):', 'machine',
            'whether the server answers in time, after the retries'),
    # ---- the plan
    Refusal("runtime/context.py", "no execution block", "plan", "a plan.json edited by hand (`vpo plan` writes one)"),
    Refusal("runtime/context.py", "the plan's execution block is for", "plan",
            "a job started on another number of processes than it was planned for"),
    Refusal("runtime/trainers/parallel.py", "does not match the plan's execution block", "plan",
            "a plan.json whose batch and block disagree (edited by hand)"),
    Refusal('runtime/trainers/grpo_advantages.py', 'win rates need whole groups on each process', 'plan',
            'the execution block may split a group over ranks (groups_span_ranks); a plan-time check for '
            '`reward_as = win_rate` with a pairwise judge is not written yet'),
)


def render() -> list[str]:
    """The spec's section 10, by kind."""
    titles = {"guard": "Guards (rejected at the recipe line first)", "files": "Files where the job runs",
              "data": "What the job computes", "machine": "The machine and the run directory",
              "plan": "A plan that does not fit"}
    out = ["## 10. Runtime refusals", "",
           "Generated from `vpolang/runtime_refusals.py`, which a test keeps equal to the runtime's raises. "
           "Every refusal the runtime can make after `vpo plan` accepted a recipe, and why it cannot be made "
           "earlier. Each stops the job with one line that `runtime/main.py` prefixes with the stage's recipe "
           "line. Former late refusals now made to work: LoRA with `reference = refresh(...)` (the reference "
           "is an adapter snapshot; E0315 retired), `evaluate` on several GPUs (it is placed on one; "
           "W0304 retired) and a VILA critic (loaded through transformers' Llava classes; W0301 retired).", ""]
    for i, kind in enumerate(KINDS, 1):
        out += [f"### 10.{i} {titles[kind]}", "", "| module | refusal (source fragment) | why at run time |",
                "|---|---|---|"]
        out += [f"| `{r.module}` | `` {_cell(r.says)} `` | {_cell(r.why)} |" for r in REFUSALS if r.kind == kind]
        out.append("")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
