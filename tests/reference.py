"""Helpers for the fidelity tests: the authors' tiny CLIP and reference outputs in tests/fixtures/."""
import os.path as osp

import torch

from trainers.clip_backbone import build_model

FIXTURES = osp.join(osp.dirname(osp.abspath(__file__)), "fixtures")


def load_reference(method):
    """The reference outputs of one method (see tests/fixtures/README.md)."""
    return torch.load(osp.join(FIXTURES, f"{method}.pt"), weights_only=True)


def reference_clip():
    """The reference's tiny CLIP (embed 32, 32 px, ViT 2x64 patch 8, text 2x128), fp32, eval."""
    state_dict = torch.load(osp.join(FIXTURES, "clip_tiny_fp16.pt"), weights_only=True)
    return build_model(dict(state_dict)).float().eval()


def reference_cfg(ref, trainer, **trainer_opts):
    """Our config for the reference's setting: its dataset, the released script's options."""
    from dassl_compat import get_cfg_default
    from trainers.config import extend_cfg

    cfg = extend_cfg(get_cfg_default())
    cfg.DATASET.NAME = ref["meta"]["dataset"]
    cfg.TRAINER.NAME = trainer
    for key, value in trainer_opts.items():
        node = cfg
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return cfg


def assert_close(actual, expected, atol, rtol=0.0, what=""):
    actual = actual.detach().float()
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(actual, expected.float(), atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")
