"""One case of `fidelity_kgcoop`, in its own process: the authors' KgCoOp or ProGrad trainer from the user's
clone of github.com/htyao89/KgCoOp on the tiny CLIP, run for one step; writes `<case>.pt`. Started by
`python -m dpt_tools.fidelity_kgcoop`, not by hand.

Their code imports `trainers`, `clip`, `datasets` and `dassl` (ProGrad needs the Dassl variant shipped in the
clone, `Dassl.ProGrad.pytorch`): the clone's folders go first on sys.path and this module imports only
torch. Patched from outside, only where their code cannot run on a CPU in fp32: `.cuda()` is the identity,
their `load_clip_to_cpu` builds the tiny CLIP with their own `clip.build_model` and returns it in fp32.
"""
import argparse
import contextlib
import importlib
import io
import os.path as osp
import sys
import types
from collections import OrderedDict

import torch
import torch.nn as nn
from yacs.config import CfgNode

EUROSAT_CLASSNAMES = [
    "Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
    "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake",
]
# case -> (their module under trainers/, their class, their config options)
CASES = {
    "kgcoop": ("kgcoop", "KgCoOp", {"TRAINER.COOP.CTX_INIT": True, "TRAINER.COOP.W": 8.0}),
    "prograd": ("prograd", "ProGrad", {"TRAINER.COOP.CTX_INIT": True, "LOSS.NAME": "prograd", "LOSS.T": 1.0}),
    # random context, another temperature and a partial projection: every option on the path
    "prograd_random": ("prograd", "ProGrad", {"TRAINER.COOP.CTX_INIT": False, "LOSS.NAME": "prograd",
                                              "LOSS.T": 2.0, "LOSS.LAMBDA": 0.8}),
}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", choices=list(CASES))
    parser.add_argument("--kgcoop-repo", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dassl-defaults", required=True, help="Dassl's default config as YAML (the parent's)")
    return parser


def their_config(overrides, dassl_defaults):
    """Dassl's defaults (built by the parent from dassl_compat and handed over as YAML, so that nothing here
    imports a Dassl name) + their train.py's extend_cfg, the tiny CLIP's input size, fp32, EuroSAT."""
    with open(dassl_defaults) as file:
        cfg = CfgNode.load_cfg(file)
    importlib.import_module("train").extend_cfg(cfg)
    cfg.DATASET.NAME = "EuroSAT"
    cfg.INPUT.SIZE = (32, 32)
    cfg.TRAINER.COOP.PREC = "fp32"
    cfg.TRAINER.COCOOP.PREC = "fp32"  # their KgCoOp casts an unused meta-net to fp16 under this key
    cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH = "sgd", 0.002, 10
    cfg.merge_from_list([item for option in overrides.items() for item in option])
    return cfg


def their_trainer(module, class_name, cfg, weights):
    """Their trainer built by their own build_model (without TrainerX.__init__, which builds data loaders)."""
    their_clip = importlib.import_module("clip.clip")
    state_dict = torch.load(weights, weights_only=True)
    module.load_clip_to_cpu = lambda cfg: their_clip.build_model(dict(state_dict)).float()
    # Dassl's warmup scheduler fails on current torch; no step here reaches the scheduler.
    module.build_lr_scheduler = lambda optim, cfg: torch.optim.lr_scheduler.StepLR(optim, 10)
    cls = getattr(module, class_name)
    trainer = cls.__new__(cls)
    trainer._models, trainer._optims, trainer._scheds = OrderedDict(), OrderedDict(), OrderedDict()
    trainer._writer = None
    trainer.cfg, trainer.device = cfg, torch.device("cpu")
    trainer.num_classes = len(EUROSAT_CLASSNAMES)
    trainer.dm = types.SimpleNamespace(dataset=types.SimpleNamespace(classnames=EUROSAT_CLASSNAMES),
                                       num_classes=len(EUROSAT_CLASSNAMES))
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.build_model()
    trainer.epoch, trainer.batch_idx, trainer.num_batches = 0, 0, 10**9  # no end-of-epoch scheduler step
    return trainer


def trainable(trainer):
    return {name: p for name, p in trainer.model.named_parameters() if p.requires_grad}


def grads_of(loss, params):
    return {name: g.detach().clone() for name, g in zip(params, torch.autograd.grad(loss, list(params.values()),
                                                                                     retain_graph=True))}


def run_case(case, args):
    module_name, class_name, overrides = CASES[case]
    cfg = their_config(overrides, args.dassl_defaults)
    module = importlib.import_module(f"trainers.{module_name}")
    torch.manual_seed(1)  # their random context initialisation (prograd_random)
    trainer = their_trainer(module, class_name, cfg, args.weights)
    params = trainable(trainer)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=generator)
    labels = torch.tensor([0, 3, 5, 9])
    model = trainer.model
    ref = {
        "meta": {"method": class_name, "case": case, "classnames": EUROSAT_CLASSNAMES, "dataset": "EuroSAT",
                 "config": cfg.dump(), "values": "their own initialisation (torch.manual_seed(1) before build_model); "
                 "images torch.randn(4, 3, 32, 32) from torch.Generator().manual_seed(0)"},
        "images": images, "labels": labels,
        "trainable_names": list(params), "trainable_shapes": {n: list(p.shape) for n, p in params.items()},
        "trainable_numel": sum(p.numel() for p in params.values()),
        "trainable_values": {n: p.detach().clone() for n, p in params.items()},
        "tokenized_prompts": model.prompt_learner.tokenized_prompts.clone(),
    }
    model.eval()
    with torch.no_grad():
        ref["eval"] = {"logits": trainer.model_inference(images) if class_name == "KgCoOp" else model(images)}
    model.train()
    if class_name == "KgCoOp":
        logits, distance = model(images)
        ce = nn.functional.cross_entropy(logits, labels)
        ref["train_outputs"] = {"logits": logits.detach()}
        ref["features"] = {"zs_text_features": model.ori_embedding.detach().clone()}
        ref["loss_components"] = {"ce_logits": ce.item(), "kg_distance": distance.item()}
        ref["loss"] = {"epoch0": (ce + trainer.w * distance).item()}
    else:
        logits = model(images)
        with torch.no_grad():
            zero_shot_logits = trainer.zs_clip(images)
        ce, kl = trainer.criterion(logits, zero_shot_logits, labels)
        ref["train_outputs"] = {"logits": logits.detach(), "zero_shot_logits": zero_shot_logits}
        ref["features"] = {"zs_text_features": trainer.zs_clip.text_features.clone()}
        ref["loss_components"] = {"ce_logits": ce.item(), "kl_zero_shot": kl.item()}
        ref["loss"] = {"epoch0": ce.item()}
        ref["component_grads"] = {"ce_logits": grads_of(ce, params), "kl_zero_shot": grads_of(kl, params)}
        ref["conflict"] = {n: bool(torch.dot(ref["component_grads"]["ce_logits"][n].flatten(),
                                             ref["component_grads"]["kl_zero_shot"][n].flatten()) < 0)
                           for n in params}
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.forward_backward({"img": images, "label": labels})  # their step: grads stay after it
    ref["grads"] = {"epoch0": {n: p.grad.detach().clone() for n, p in params.items()}}
    if class_name == "ProGrad":
        # On the tiny CLIP the two gradients agree (positive cosine) in every setting tried, so their
        # projection is not taken above; their prograd_backward_and_update with the distillation loss
        # negated (a conflict by construction) pins the projection's arithmetic.
        with torch.no_grad():
            for name, value in ref["trainable_values"].items():
                params[name].copy_(value)
        logits = model(images)
        ce, kl = trainer.criterion(logits, trainer.zs_clip(images).detach(), labels)
        trainer.prograd_backward_and_update(ce, -kl, cfg.LOSS.LAMBDA)
        ref["grads_negated_kl"] = {n: p.grad.detach().clone() for n, p in params.items()}
    torch.save(ref, osp.join(args.out, f"{case}.pt"))


def main(argv=None):
    args = build_parser().parse_args(argv)
    repo = osp.abspath(args.kgcoop_repo)
    sys.path[:0] = [osp.join(repo, "KgCoOp"), osp.join(repo, "Dassl.ProGrad.pytorch")]
    nn.Module.cuda = lambda self, device=None: self
    torch.Tensor.cuda = lambda self, device=None, non_blocking=False: self
    run_case(args.case, args)


if __name__ == "__main__":
    main()
