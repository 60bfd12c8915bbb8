"""Helpers for the fidelity tests: the authors' tiny CLIP and reference outputs in tests/fixtures/, and our
CoOp / DPT / VLP / VPT / KgCoOp / ProGrad models on that CLIP with the authors' trainable values (their names
mapped to ours)."""
import os.path as osp
from collections import OrderedDict
from types import SimpleNamespace

import torch

from dpt_models.clip_backbone import build_model
from dpt_models.coop import CoOpCLIP
from trainers.dpt import DPT
from trainers.kgcoop import KgCoOp
from trainers.prograd import ProGrad
from trainers.vlp import VLP
from trainers.vpt import VPT

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


def coop_reference_model():
    """(reference, our CoOp model on the reference CLIP with the reference's context)."""
    ref = load_reference("coop")
    model = CoOpCLIP(reference_clip(), ref["meta"]["classnames"])
    with torch.no_grad():
        model.prompt_learner.ctx.copy_(ref["trainable_values"]["prompt_learner.ctx"])
    return ref, model


TRAINERS = {"dpt": DPT, "vlp": VLP, "vpt": VPT, "kgcoop": KgCoOp, "prograd": ProGrad, "prograd_random": ProGrad}
# The reference's 2-block ViT: block 0 has deep prompts, block 1 is class-aware. KgCoOp and ProGrad: the
# options of the fixture's case (dpt_tools/fidelity_kgcoop_side.py, CASES), fp32.
REFERENCE_OPTS = {
    "dpt": {"TRAINER.DPT.BOTTOMLIMIT": 2}, "vlp": {}, "vpt": {},
    "kgcoop": {"TRAINER.KGCOOP.PREC": "fp32"},
    "prograd": {"TRAINER.PROGRAD.PREC": "fp32"},
    "prograd_random": {"TRAINER.PROGRAD.PREC": "fp32", "TRAINER.PROGRAD.CTX_INIT": False, "TRAINER.PROGRAD.T": 2.0,
                       "TRAINER.PROGRAD.LAMBDA": 0.8},
}


# The authors' parameter names -> ours. CAVPT entries are per class-aware block i; the authors keep
# the extra key/value tokens of all blocks in one tensor `extractor.ctx` [blocks, 10, D].
PARAMETER_NAMES = {
    "prompt_learner.ctx": "prompt_learner.ctx",
    "image_encoder.transformer.ctx_learner.ctx": "visual_prompts.ctx",
}
CAVPT_PREFIX = "image_encoder.transformer.extractor."
CAVPT_NAMES = {
    "meta_nets.{i}.weight": "cavpt.{i}.text_to_query.weight",
    "meta_nets.{i}.bias": "cavpt.{i}.text_to_query.bias",
    "attns.{i}.qmlp.weight": "cavpt.{i}.query_proj.weight",
    "attns.{i}.kmlp.weight": "cavpt.{i}.key_proj.weight",
    "attns.{i}.vmlp.weight": "cavpt.{i}.value_proj.weight",
    "lns.{i}.weight": "cavpt.{i}.aux_norm.weight",
    "lns.{i}.bias": "cavpt.{i}.aux_norm.bias",
    "classfiers.{i}.weight": "cavpt.{i}.aux_classifier.weight",
    "lns2.{i}.weight": "cavpt.{i}.prompt_norm.weight",
    "lns2.{i}.bias": "cavpt.{i}.prompt_norm.bias",
}


def to_our_names(tensors):
    """{authors' name: tensor} -> {our parameter name: tensor}; every name must be known."""
    ours = {}
    for name, value in tensors.items():
        if name in PARAMETER_NAMES:
            ours[PARAMETER_NAMES[name]] = value
        elif name == CAVPT_PREFIX + "ctx":
            ours.update({f"cavpt.{i}.extra_tokens": block for i, block in enumerate(value)})
        else:
            local = name[len(CAVPT_PREFIX):]
            index = local.split(".")[1]
            ours[CAVPT_NAMES[local.replace(f".{index}.", ".{i}.", 1)].format(i=index)] = value
    return ours


def bare_trainer(method, epoch=0, **opts):
    """A trainer object without data or engine: its config, class names, model builder and losses."""
    ref = load_reference(method)
    trainer_cls = TRAINERS[method]
    trainer = trainer_cls.__new__(trainer_cls)
    trainer.cfg = reference_cfg(ref, trainer_cls.__name__, **{**REFERENCE_OPTS[method], **opts})
    trainer.check_cfg(trainer.cfg)
    trainer.dm = SimpleNamespace(dataset=SimpleNamespace(classnames=ref["meta"]["classnames"]))
    trainer.device = torch.device("cpu")
    trainer.epoch = epoch
    return trainer


def reference_model(method, **opts):
    """(reference, trainer, model built by the trainer with the reference's prompt values)."""
    ref = load_reference(method)
    trainer = bare_trainer(method, **opts)
    model = trainer.build_clip_model(reference_clip(), ref["meta"]["classnames"])
    values = to_our_names(ref["trainable_values"])
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert set(trainable) == set(values), "our trainable parameters must be exactly the authors'"
    with torch.no_grad():
        for name, value in values.items():
            trainable[name].copy_(value)
    return ref, trainer, model


def float_outputs(outputs):
    """The model's outputs with floating tensors in fp32, as the trainer passes them to compute_loss."""
    return {k: v.float() if v.is_floating_point() else v for k, v in outputs.items()}


def with_training_step(trainer, model):
    """The bare trainer made able to run its own forward_backward on `model`: its trained modules registered
    with SGD at learning rate 0 (the step leaves the parameters as they are, their gradients in .grad)."""
    trainer.model = model.train()
    trainer._models, trainer._optims, trainer._scheds = OrderedDict(), OrderedDict(), OrderedDict()
    for name, module in model.named_children():
        if any(p.requires_grad for p in module.parameters()):
            trainer.register_model(name, module, torch.optim.SGD(module.parameters(), lr=0.0), None)
    trainer.batch_idx, trainer.num_batches = 0, 2
    return trainer


def reference_step_inputs(case):
    """(reference, trainer able to step, model, loss, components) of a KgCoOp / ProGrad fixture, having
    checked the eval logits and every train output (atol 1e-4), the loss and each of its terms (rtol 1e-5)."""
    ref, trainer, model = reference_model(case)
    model.eval()
    with torch.no_grad():
        assert_close(model(ref["images"])["logits"], ref["eval"]["logits"], atol=1e-4, what="eval logits")
    with_training_step(trainer, model)
    outputs = model(ref["images"])
    for key, expected in ref["train_outputs"].items():
        assert_close(outputs[key], expected, atol=1e-4, what=key)
    loss, components = trainer.compute_loss(outputs, ref["labels"])
    torch.testing.assert_close(loss.item(), ref["loss"]["epoch0"], rtol=1e-5, atol=0)
    for name, value in ref["loss_components"].items():
        torch.testing.assert_close(components[name].item(), value, rtol=1e-5, atol=0, msg=name)
    return ref, trainer, model, loss, components
