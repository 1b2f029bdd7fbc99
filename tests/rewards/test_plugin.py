"""User reward classes without editing vpo: a package installed on the fly (a module plus its
.dist-info with a `vpo.rewards` entry point, on sys.path) and `module:Class` entries; the compiler checks
only the syntax and never imports the module."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest
import torch

from runtime.errors import JobError
from runtime.rewards import registry

from .conftest import noise_video, square_video

MODULE = f"vpo_test_plugin_{uuid.uuid4().hex[:8]}"
SOURCE = textwrap.dedent('''
    import torch
    from runtime.rewards.base import Reward

    class Brightness:
        """A plain object: one score per video."""
        def __init__(self, scale="1"):
            self.scale = float(scale)

        def score(self, videos, prompts):
            return videos.mean(dim=(1, 2, 3, 4)) * self.scale

    class Stats:
        def __init__(self, path=None):
            self.path = path

        def score(self, videos, prompts):
            return {"mean": videos.mean(dim=(1, 2, 3, 4)), "words": torch.tensor([float(len(p.split())) for p in prompts])}

    class Native(Reward):
        name, heads = "native", ("contrast",)

        def score(self, videos, prompts):
            return {"contrast": videos.std(dim=(1, 2, 3, 4))}

    class Broken:
        def __init__(self):
            raise RuntimeError("no weights here")
''')


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / f"{MODULE}.py").write_text(SOURCE)
    info = root / f"{MODULE}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {MODULE}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vpo.rewards]\nbrightness = {MODULE}:Brightness\n"
                                           f"stats = {MODULE}:Stats\n")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    sys.modules.pop(MODULE, None)


def _ref(**spec):
    full = {"kind": "plugin", "heads": [], "path": None, "options": [], "device": "cpu", "bounded": True, **spec}
    return {"ref": "reward", "name": "mine", "head": None, "heads": full["heads"] or None, "spec": full}


def _videos():
    return torch.stack([square_video(frames=4, size=16), noise_video(frames=4, size=16)])


def test_entry_point_by_name_with_options(installed):
    scores = registry.build_reward(_ref(entry="brightness", options=["scale=2.5"]))(_videos(), ["a", "b"])
    assert torch.allclose(scores["mine"], _videos().mean(dim=(1, 2, 3, 4)) * 2.5)


def test_module_class_with_heads_and_path(installed, tmp_path):
    reward = registry.build_reward(_ref(entry=f"{MODULE}:Stats", heads=["mean", "words"], path="weights"),
                                   base_dir=tmp_path)
    scores = reward(_videos(), ["one two", "three"])
    assert reward.impl.path == tmp_path / "weights"
    assert scores["words"].tolist() == [2.0, 1.0] and "overall" in scores


def test_a_vpo_reward_subclass_is_used_as_it_is(installed):
    reward = registry.build_reward(_ref(entry=f"{MODULE}:Native", heads=["contrast"]))
    assert type(reward).__name__ == "Native"
    assert torch.allclose(reward(_videos(), ["a", "b"])["contrast"], _videos().std(dim=(1, 2, 3, 4)))


@pytest.mark.parametrize("spec, message", [
    ({"entry": "nope"}, r"no `vpo.rewards` entry point named `nope` \(.*brightness, .*stats"),
    ({"entry": "no_such_module_xyz:C"}, r"importing `no_such_module_xyz` .* failed: ModuleNotFoundError"),
    ({"entry": f"{MODULE}:Missing"}, "has no `Missing`"),
    ({"entry": f"{MODULE}:Broken"}, "building the plugin .* failed: RuntimeError: no weights here"),
    ({"entry": "stats"}, r"returned heads \['mean', 'words'\]; declare them"),
])
def test_plugin_failures_are_job_errors(installed, spec, message):
    with pytest.raises(JobError, match=message):
        registry.build_reward(_ref(**spec))(_videos(), ["a", "b"])


def test_the_compiler_checks_syntax_and_never_imports_the_plugin(installed, tmp_path):
    """The plugin is importable in the checking process (its folder on PYTHONPATH) and would leave a
    marker file when imported: `vpo check` reports the bad entry and leaves no marker."""
    import os

    marker = tmp_path / "imported"
    (installed / "vpo_marker_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass C: pass\n")
    recipe = tmp_path / "r.vpo"
    recipe.write_text(textwrap.dedent('''\
        vpo 0.1
        use std.shapes
        reward mine = plugin { entry = "vpo_marker_plugin:C", options = ["scale=2"] }
        reward bad = plugin { entry = "os.system('x'):C" }
        stage rl = grpo(shapes.tiny_dit) {
          prompts = shapes.prompts(n = 8)
          reward  = mine + bad
          kl      = 0.01
          steps   = 2
          lr      = 1e-4
        }
    '''))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "check", str(recipe)], capture_output=True,
                         text=True, timeout=120, env=env)
    text = out.stdout + out.stderr
    assert out.returncode == 1 and "Traceback" not in text, text
    assert "error[E0224]" in text and ":4:" in text and text.count("error[") == 1, text
    assert not marker.exists()
