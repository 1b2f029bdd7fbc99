"""Prompts of the shapes world and their attributes; a deterministic split that holds out combinations."""
from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

from runtime.errors import JobError
from vpolang.schema.entities import MAX_SHAPES_PROMPTS

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (1.0, -1.0, -1.0), "green": (-1.0, 1.0, -1.0), "blue": (-1.0, -1.0, 1.0),
           "yellow": (1.0, 1.0, -1.0)}
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}  # (dy, dx) per unit time
BACKGROUNDS = {"black": (-1.0, -1.0, -1.0), "white": (1.0, 1.0, 1.0)}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
VOCAB = ("<pad>", "<unk>", "a", "moving", "on", "background") + SHAPES + tuple(COLOURS) + tuple(DIRECTIONS) \
    + tuple(BACKGROUNDS)


@dataclass(frozen=True)
class Attributes:
    shape: str
    colour: str
    direction: str
    background: str

    @property
    def prompt(self) -> str:
        return f"a {self.colour} {self.shape} moving {self.direction} on a {self.background} background"


def all_attributes() -> list[Attributes]:
    return [Attributes(*combo) for combo in itertools.product(SHAPES, COLOURS, DIRECTIONS, BACKGROUNDS)]


def split_of(attrs: Attributes) -> str:
    """About one combination in six of (shape, colour, direction) is held out for `test`, whatever the
    background: the test split asks for compositions never seen in training."""
    key = f"{attrs.shape}/{attrs.colour}/{attrs.direction}".encode()
    return "test" if int(hashlib.sha256(key).hexdigest(), 16) % 6 == 0 else "train"


def parse_prompt(prompt: str) -> Attributes | None:
    words = prompt.lower().replace(",", " ").split()
    pick = lambda options: next((w for w in words if w in options), None)  # noqa: E731
    found = (pick(SHAPES), pick(COLOURS), pick(DIRECTIONS), pick(BACKGROUNDS) or "black")
    return Attributes(*found) if all(found) else None


def prompts(n: int, split: str = "train", seed: int = 0) -> list[str]:
    """n prompts of a split, cycling through its combinations in a seeded order (n bounded as in the
    schema, checked before any work)."""
    if not 0 <= n <= MAX_SHAPES_PROMPTS:
        raise JobError(f"shapes.prompts: n = {n} is outside 0..{MAX_SHAPES_PROMPTS}")
    pool = [a for a in all_attributes() if split_of(a) == split]
    rng = random.Random(f"shapes-prompts-{split}-{seed}")
    out: list[str] = []
    while len(out) < n:
        batch = pool[:]
        rng.shuffle(batch)
        out.extend(a.prompt for a in batch)
    return out[:n]
