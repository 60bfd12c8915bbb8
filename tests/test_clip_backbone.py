"""dpt_models/clip_backbone.py: loading CLIP weights (OpenAI archives and state dicts, a clear error when missing)."""
import urllib.error
import urllib.request

import pytest
import torch

from dpt_models.clip_backbone import MissingWeightsError, clip, load_clip
from dpt_models.errors import UserError


def test_missing_clip_weights_error_names_file_url_and_place(tmp_path, monkeypatch):
    def offline(url, root):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(clip.clip, "_download", offline)
    with pytest.raises(MissingWeightsError) as info:
        load_clip("ViT-B/16", download_root=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "ViT-B-16.pt") in message
    assert clip.clip._MODELS["ViT-B/16"] in message
    assert "MODEL.BACKBONE.PATH" in message
    with pytest.raises(MissingWeightsError, match="not a file"):
        load_clip("ViT-B/16", path=str(tmp_path / "nowhere.pt"))
    with pytest.raises(UserError, match="Unknown CLIP backbone 'ViT-B/61'"):
        load_clip("ViT-B/61")


def test_a_weights_file_that_is_not_openais_says_so_and_how_to_use_it(tmp_path, monkeypatch):
    """~/.cache/clip/<file> exists, but its checksum is not OpenAI's (a converted copy) and no download."""
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # clip's own _download runs, without network
    own_copy = tmp_path / "ViT-B-16.pt"
    own_copy.write_bytes(b"converted weights")
    with pytest.raises(MissingWeightsError) as info:
        load_clip("ViT-B/16", download_root=str(tmp_path))
    message = str(info.value)
    assert f"{own_copy} exists but is not OpenAI's file" in message
    assert f"set MODEL.BACKBONE.PATH {own_copy}" in message and "expected the file" not in message
    assert own_copy.read_bytes() == b"converted weights"


def test_openai_torchscript_archives_and_state_dicts_load_alike(tmp_path):
    """OpenAI's released files are TorchScript archives; ours and the tests' are state dicts."""
    import warnings

    from dpt_models.clip_backbone import save_tiny_clip

    state_file = save_tiny_clip(str(tmp_path / "state.pt"), seed=4)
    model = load_clip("tiny", path=state_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing is deprecated and chatty; it only writes the test file
        scripted = torch.jit.trace(model, (torch.randn(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)))
    scripted.save(str(tmp_path / "openai_format.pt"))
    loaded = load_clip("tiny", path=str(tmp_path / "openai_format.pt"))
    assert loaded.visual.proj.dtype == torch.float32 and not loaded.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
