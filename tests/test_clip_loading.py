"""build_clip (every CLIP the project loads) gives `clip.model.build_model`'s model and values without
building a randomly initialised copy first: the model is made on the meta device, weights assigned."""
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from dpt_models.clip_backbone import build_clip, build_model, clip, load_clip, save_tiny_clip, tiny_clip_state_dict

ARCHITECTURES = {
    "vit": {},
    "resnet": dict(vision_layers=(1, 1, 1, 1), vision_width=64, image_resolution=64),
}


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_build_clip_equals_build_model(architecture):
    state_dict = tiny_clip_state_dict(**ARCHITECTURES[architecture])
    generator = torch.Generator().manual_seed(0)
    # values that fp16 cannot hold: build_model rounds the weights OpenAI keeps in fp16, so must we
    state_dict = {k: v + 1e-4 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
                  for k, v in state_dict.items()}
    expected = build_model(dict(state_dict)).float().eval()
    model = build_clip(dict(state_dict))
    assert not model.training
    got, want = model.state_dict(), expected.state_dict()
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype and torch.equal(got[name], want[name]), name
    tensors = [*model.parameters(), *model.buffers(), *(b.attn_mask for b in model.transformer.resblocks)]
    assert not any(t.is_meta for t in tensors)
    tokens = torch.randint(0, 49408, (2, 77))
    size = model.visual.input_resolution
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(model.encode_text(tokens), expected.encode_text(tokens))
        assert torch.equal(model.encode_image(images), expected.encode_image(images))


def test_loading_never_initialises_real_weights(tmp_path, monkeypatch):
    """The random initialisation (and so its memory) happens only on the meta device."""
    initialised_devices = []
    initialize = clip.model.CLIP.initialize_parameters

    def recording_initialize(model):
        initialised_devices.append(model.token_embedding.weight.device.type)
        initialize(model)

    monkeypatch.setattr(clip.model.CLIP, "initialize_parameters", recording_initialize)
    path = save_tiny_clip(str(tmp_path / "clip.pt"), seed=1)
    initialised_devices.clear()  # save_tiny_clip makes its random model for real
    model = load_clip("tiny", path=path)
    assert initialised_devices == ["meta"]
    assert model.token_embedding.weight.device.type == "cpu"


def test_openai_clip_loads_without_pkg_resources(tmp_path):
    """setuptools >= 81 has no pkg_resources, which clip-anytorch's clip.py imports: CLIP still loads (a fresh
    interpreter where importing pkg_resources fails), tokenizes and builds a model, and no pkg_resources is left."""
    script = f"""
import sys
sys.modules["pkg_resources"] = None  # as if setuptools >= 81: `import pkg_resources` raises ImportError
from dpt_models.clip_backbone import clip, load_clip, save_tiny_clip
model = load_clip("tiny", path=save_tiny_clip({str(tmp_path / "clip.pt")!r}, seed=1))
assert clip.tokenize(["a photo of a cat"]).shape == (1, 77)
assert sys.modules["pkg_resources"] is None
print(type(model).__name__)
"""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CLIP"
