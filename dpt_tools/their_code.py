"""The authors' MaPLe, IVLP and PromptSRC, imported from their clones and patched from outside to run on a
CPU in fp32: what `fidelity_multimodal` and `versus_reference` share.

Their code imports `trainers`, `clip` and `dassl`, names that ours share, so a process that runs it holds
none of our modules: this module imports only torch, and may be imported there.
"""
import importlib
import sys
from collections import namedtuple

import torch

# repository option -> the authors' repository
REPOSITORY_URLS = {
    "maple_repo": "https://github.com/muzairkhattak/multimodal-prompt-learning",
    "promptsrc_repo": "https://github.com/muzairkhattak/PromptSRC",
}

TheirTrainer = namedtuple("TheirTrainer", "repository module class_name config_node")
# method -> its repository option, their module under trainers/, their trainer class, their config node
THEIR_SUCCESSORS = {
    "MaPLe": TheirTrainer("maple_repo", "maple", "MaPLe", "MAPLE"),
    "IVLP": TheirTrainer("maple_repo", "independentVL", "IVLP", "IVLP"),
    "PromptSRC": TheirTrainer("promptsrc_repo", "promptsrc", "PromptSRC", "PROMPTSRC"),
}


def neutralise_cuda_and_half():
    """`.cuda()` and `.half()` of tensors and modules become identities (their code calls both)."""
    identity = lambda self, *args, **kwargs: self  # noqa: E731
    torch.Tensor.cuda = identity
    torch.Tensor.half = identity
    torch.nn.Module.cuda = identity
    torch.nn.Module.half = identity


def import_their_trainer(method, repository, dassl, backbone, weights):
    """Their trainer module of `method` (`THEIR_SUCCESSORS`) from the clone at `repository`, with Dassl from
    `dassl` (a clone or the wheel file), ready for the CPU in fp32: `.cuda()` and `.half()` neutralised, and
    their `clip` loading the OpenAI state dict file `weights` as the backbone named `backbone`."""
    sys.path[:0] = [repository, dassl]
    neutralise_cuda_and_half()
    module = importlib.import_module(f"trainers.{THEIR_SUCCESSORS[method].module}")
    their_clip = importlib.import_module("clip.clip")
    their_clip._MODELS[backbone] = "weights"
    their_clip._download = lambda url, *unused, **unused_kw: weights
    return module
