"""Every measured or assumed constant of the estimates, with the measurement it came from.

This is the one file to edit when a new measurement arrives: the other modules import these names.
Each constant is written as the arithmetic on the raw measurement, so a number in `vpo plan` can be
traced back to a run. tests/estimate/test_calibration.py re-derives them from the result files.

Reference run (WAN_STEP): Wan2.1-T2V-1.3B transformer built from its config, bf16, batch 1, one
480x832 clip of 33 frames = 14,040 tokens, on an H100 80GB HBM3 (torch 2.11, cuDNN attention, no
optimizer): bench/results/gpu_wan_step_33f.json.
"""
from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30

WAN_STEP = "bench/results/gpu_wan_step_33f.json"
WAN_DPO = "bench/results/gpu_dpo_memory.json"  # the same architecture, one pair per step, 480x832
WAN_TOKENS = 14_040  # 9 latent frames x 30 x 52 patches
WAN_LAYERS, WAN_HIDDEN, WAN_PARAMS = 30, 1536, 1_420_000_000
H100_PEAK_TFLOPS = 989.0

# ---- speed: model FLOP utilisation (MFU) ------------------------------------------------------------
# fwd+bwd: 237.6 TFLOP (torch.utils.flop_counter) in 0.614 s; a no-grad forward: 72.9 TFLOP in 0.194 s.
TRAIN_MFU = 237.609 / 0.6141 / H100_PEAK_TFLOPS  # 0.391
INFERENCE_MFU = 72.930 / 0.19355 / H100_PEAK_TFLOPS  # 0.381

# ---- fixed costs of a step on a GPU ---------------------------------------------------------------------
# The optimiser step of Wan2.1-1.3B (1.42B trainable parameters), from the backward's end to updated
# weights (bench/results/gpu_optimizer_step.json, H100): fused torch AdamW over fp32 masters (what one GPU
# runs) 0.0571 s; DeepSpeed ZeRO-2's step (what several GPUs run by default) 0.2511 s, host-bound by its
# per-tensor overflow checks and norms. Scaled by the trainable parameters.
GPU_TRAINERS = "bench/results/gpu_trainers.json"
OPTIMIZER_STEP_S = 0.0571
ZERO_OPTIMIZER_STEP_S = 0.2511

# Below some clip size a pass is bound by the host launching its kernels (~17,500 per fwd+bwd of
# Wan2.1-1.3B, profiled), not by the GPU: the 320x576 x 17-frame steps (3,600 tokens) of GPU_TRAINERS take
# the same time whatever the FLOPs. SFT's step there, 0.2648 s, is one fwd+bwd plus the optimiser; DPO's,
# 0.6212 s, adds a second fwd+bwd and two no-grad reference forwards. Per layer of the transformer.
HOST_FLOOR_TRAIN_S = (0.2648 - OPTIMIZER_STEP_S) / WAN_LAYERS  # 6.9 ms per layer: 0.208 s for Wan2.1-1.3B
HOST_FLOOR_FORWARD_S = (0.6212 - 2 * 0.2648 + OPTIMIZER_STEP_S) / 2 / WAN_LAYERS  # 2.5 ms per layer: 0.074 s

# Above the floor, shorter sequences still reach a smaller fraction of peak than the 14,040-token
# reference: vpo's SFT trainer (bf16, batch 1) measured, with the planner's FLOP-model time at TRAIN_MFU
# and the optimiser step each run had (bench/results/gpu_trainer_overhead*.json: torch AdamW on bf16
# weights, 0.0536 s; GPU_TRAINERS: fp32 masters). The efficiency of a pass saturates with its tokens:
# eff(T) = TRAIN_MFU_MAX T / (T + T0), fitted through the largest and smallest; the middle one checks it.
TRAINER_STEPS = {  # tokens per pass: (measured s, planned s at TRAIN_MFU, optimiser s)
    14_040: (0.6510, 0.6140, 0.0536),  # 480x832, 33 frames
    7_800: (0.3458, 0.2605, OPTIMIZER_STEP_S),  # 480x832, 17 frames
    6_480: (0.2769, 0.2023, 0.0536),  # 320x576, 33 frames
}


def _fit_saturation() -> tuple[float, float]:
    (t1, (m1, p1, o1)), (t2, (m2, p2, o2)) = max(TRAINER_STEPS.items()), min(TRAINER_STEPS.items())
    e1, e2 = TRAIN_MFU * p1 / (m1 - o1), TRAIN_MFU * p2 / (m2 - o2)  # the efficiency each pass reached
    t0 = (e1 - e2) / (e2 / t2 - e1 / t1)
    return e1 * (t1 + t0) / t1, t0


TRAIN_MFU_MAX, SATURATION_TOKENS = _fit_saturation()


def dit_slowdown(tokens: float) -> float:
    """How much longer a transformer pass over `tokens` takes than TRAIN_MFU (or INFERENCE_MFU, for no-grad
    passes) predicts. Beyond the largest measured pass it stays at that pass's value: no extrapolation
    towards faster. The GRPO and DPO steps of GPU_TRAINERS confirm it for no-grad forwards too."""
    tokens = min(tokens, max(TRAINER_STEPS))
    return TRAIN_MFU / (TRAIN_MFU_MAX * tokens / (tokens + SATURATION_TOKENS))


# `compile = true` (regional compilation of the repeated blocks), the same reference step eager vs
# compiled (bench/results/gpu_wan_step_compiled.json): fwd+bwd 0.6136 -> 0.4847 s, no-grad forward
# 0.1939 -> 0.1419 s, peak 47.67 -> 38.03 GiB, all of it activations (fused elementwise chains save fewer
# fp32 intermediates). Host floors are kept as measured eager: conservative for short clips.
WAN_COMPILED = "bench/results/gpu_wan_step_compiled.json"
COMPILED_TRAIN_TIME = 0.4847 / 0.6136
COMPILED_FORWARD_TIME = 0.1419 / 0.1939
COMPILED_ACTIVATION_BYTES = (38.027 * GIB - 2 * 2 * WAN_PARAMS) / (47.668 * GIB - 2 * 2 * WAN_PARAMS)

# The flash/cuDNN attention backward recomputes the score matrix: 5 matmuls against the forward's 2, so
# attention costs 2.5x its forward in the backward while linear layers cost 2x. With these two ratios the
# FLOP model reproduces the counted 237.6 TFLOP step from the 72.9 TFLOP forward (tests/estimate).
LINEAR_BACKWARD_RATIO = 2.0
ATTENTION_BACKWARD_RATIO = 2.5

# Decoupled DPO (the stashed schedule) at 17 frames: 0.6187 s per pair against 0.5962 s for the standard
# loss (WAN_DPO): the stashed gradient's arithmetic, no extra forward.
DPO_DECOUPLED_TIME_FACTOR = 0.6187 / 0.5962  # 1.04

# ---- memory ------------------------------------------------------------------------------------------
# Activation bytes per token, per layer, per unit of width, without checkpointing: the 47.67 GiB peak of
# the reference fwd+bwd minus bf16 weights and gradients (2 x 2 bytes x 1.42B), spread over 14,040
# tokens x 30 layers x 1536 wide. About 70 bytes: Wan keeps norms, modulation and RoPE in fp32.
# Checked against the DPO runs (tests/estimate/test_memory.py): 55.6 GiB standard and 33.2 GiB
# decoupled at 17 frames, 53.0 GiB decoupled at 33 frames, 72.9 GiB at 49 frames, all within 4%.
DIT_ACTIVATION_BYTES = (47.668 * GIB - 2 * 2 * WAN_PARAMS) / (WAN_TOKENS * WAN_LAYERS * WAN_HIDDEN)

# Language/vision-language transformers (judges, reward-model backbones): 34 bytes per token per layer
# per unit of width in bf16 with flash attention (Korthikanti et al. 2022, "Reducing Activation
# Recomputation in Large Transformer Models", sbh(34 + 5as/h) without the attention-score term).
LM_ACTIVATION_BYTES = 34.0

# With activation checkpointing each block keeps its bf16 input (2 bytes per unit of width) and one
# block is recomputed at a time. The model gives 7.9 GiB for the reference step where 7.07 GiB was
# measured: 0.8 GiB high, because not every gradient buffer is alive at the peak. Kept conservative.
CHECKPOINT_BOUNDARY_BYTES = 2.0

# Not measured (assumptions, stated in every plan's README): CUDA context, cuBLAS workspaces and NCCL
# buffers outside torch's allocator, plus the caching allocator's fragmentation on top of the
# allocated peak (max_memory_allocated, which every measurement above reports).
CONTEXT_GIB = 1.5
FRAGMENTATION = 0.05

# ---- VAE and scorer costs ------------------------------------------------------------------------------
# Wan2.1 VAE (diffusers AutoencoderKLWan default config, 126.9M params), FLOPs per output pixel counted
# with torch FlopCounterMode at 64x64 and 5 and 9 frames (independent of the resolution: 128x64 gives
# the same per-pixel count). The causal VAE treats the first frame apart: FLOPs per pixel of the first
# frame, then per pixel of each further frame. Re-measure: `python -m tests.estimate.calibrate_vae`.
WAN_VAE_PARAMS = 126_892_531
VAE_ENCODE_FIRST = 6.663e6
VAE_ENCODE_REST = 5.003e6
VAE_DECODE_FIRST = 10.752e6
VAE_DECODE_REST = 8.445e6

# Tokens of the question or prompt a judge reads besides the frames (assumption).
JUDGE_PROMPT_TOKENS = 64


@dataclass(frozen=True)
class Efficiency:
    """Fractions of a device's dense peak reached by training steps (fwd+bwd) and by no-grad forwards."""

    train: float
    inference: float
    source: str = ""


_MEASURED_H100 = f"measured: Wan2.1-1.3B bare loop on an H100 ({WAN_STEP})"
_ASSUMED = "assumed: the H100's measured fraction of peak (not yet measured on this device)"

# The quickstart recipe's training jobs on the 2-core CI machine (bench/results/README.md, "CPU"): SFT
# 2.28 TFLOP in 48 s, GRPO 9.61 TFLOP in 151 s, DPO 0.61 TFLOP in 19 s by this FLOP model, against a
# nominal 0.157 TFLOP/s (2 cores x 2.45 GHz x 32 fp32 FLOP per cycle): 0.36. The times include process
# start-up and data preparation, so the figure errs slow.
_CPU_EFFICIENCY = (2.28 + 9.61 + 0.61) / (48 + 151 + 19) / 0.157

EFFICIENCY: dict[str, Efficiency] = {
    "H100-80GB": Efficiency(TRAIN_MFU, INFERENCE_MFU, _MEASURED_H100),
    "H200": Efficiency(TRAIN_MFU, INFERENCE_MFU, "assumed: the H100's (same tensor cores, faster memory)"),
    "A100-80GB": Efficiency(TRAIN_MFU, INFERENCE_MFU, _ASSUMED),
    "A100-40GB": Efficiency(TRAIN_MFU, INFERENCE_MFU, _ASSUMED),
    "L40S": Efficiency(TRAIN_MFU, INFERENCE_MFU, _ASSUMED),
    "RTX-4090": Efficiency(TRAIN_MFU, INFERENCE_MFU, _ASSUMED),
    "A10G": Efficiency(TRAIN_MFU, INFERENCE_MFU, _ASSUMED),
    "L4": Efficiency(TRAIN_MFU, INFERENCE_MFU, _ASSUMED),
    "cpu": Efficiency(_CPU_EFFICIENCY, _CPU_EFFICIENCY, "measured: the quickstart training jobs on the 2-core CI machine"),
}
