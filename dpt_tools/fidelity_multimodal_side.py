"""One method of `fidelity_multimodal`, in its own process: the authors' MaPLe, IVLP or PromptSRC, imported
from their clone, run on a small CLIP on the CPU in fp32; writes one fixture file. Started by
`python -m dpt_tools.fidelity_multimodal`, not by hand.

Their code imports `trainers`, `clip` and `dassl`, names that ours share, so this module imports only torch,
yacs and `dpt_tools.their_code`, which imports their trainer patched from outside (`.cuda()` and `.half()`
identities, their `clip._download` returning the given weight file).
Their `forward_backward` computes the loss and gradients; an SGD at learning rate 0 stands in for Dassl's
optimiser at the first step (the parameters do not move), their scheduler step is a no-op.
"""
import argparse
from collections import OrderedDict

import torch
from yacs.config import CfgNode

from dpt_tools.their_code import THEIR_SUCCESSORS, import_their_trainer

CLASSNAMES = ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
              "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake"]
LABELS = [0, 3, 5, 9]
INPUT_SEED = 7  # images [4, 3, S, S] ~ N(0, 1) from this seed
VALUE_SEED = 11  # MaPLe's trainable values and gradient sketches (`seeded_normal`)
SKETCH_COLUMNS = 16
# fixture -> (the method, their trainer in `THEIR_SUCCESSORS`; the options of the fixture)
METHODS = {
    "maple": ("MaPLe", {"N_CTX": 2, "CTX_INIT": "a photo of a", "PROMPT_DEPTH": 2}),
    "ivlp": ("IVLP", {"N_CTX_TEXT": 2, "N_CTX_VISION": 2, "CTX_INIT": "a photo of a", "PROMPT_DEPTH_TEXT": 2,
                      "PROMPT_DEPTH_VISION": 2}),
    "promptsrc": ("PromptSRC", {
        "N_CTX_TEXT": 4, "N_CTX_VISION": 4, "CTX_INIT": "a photo of a", "PROMPT_DEPTH_TEXT": 2,
        "PROMPT_DEPTH_VISION": 2, "TEXT_LOSS_WEIGHT": 25, "IMAGE_LOSS_WEIGHT": 10, "GPA_MEAN": 2, "GPA_STD": 1}),
}
BACKBONE = "ViT-B/16"  # the name their configs give; the weights are the fixture's small CLIP
GPA_EPOCHS = 4  # PromptSRC: epochs of one step each, GPA over them
GPA_LR = 0.5  # a learning rate that moves the tiny prompts visibly between epochs
LATER_EPOCH = 2  # PromptSRC: loss and gradients also at this epoch (after 2 steps)
# Their trainable parameters that hold more than 2 MB of gradients are stored as sketches: grad @ S,
# S [in, SKETCH_COLUMNS] = seeded_normal(..., VALUE_SEED + 1).
LARGE = 100_000


def seeded_normal(shape, seed, std=0.02):
    """A tensor of `shape` drawn from N(0, std) by a generator seeded with `seed` (reproducible anywhere)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * std


def sketch_matrix(in_features):
    return seeded_normal((in_features, SKETCH_COLUMNS), VALUE_SEED + 1, std=1.0)


def stored_gradient(grad):
    """What the fixture keeps of a gradient: the tensor, or for a large matrix its sketch grad @ S."""
    if grad.numel() > LARGE:
        return grad @ sketch_matrix(grad.shape[1])
    return grad.clone()


def build_cfg(node_name, options, input_size, max_epoch):
    cfg = CfgNode()
    cfg.INPUT = CfgNode({"SIZE": (input_size, input_size)})
    cfg.OPTIM = CfgNode({"MAX_EPOCH": max_epoch})
    cfg.MODEL = CfgNode({"BACKBONE": CfgNode({"NAME": BACKBONE}), "INIT_WEIGHTS": ""})
    cfg.TRAINER = CfgNode({node_name: CfgNode({**options, "PREC": "fp32"})})
    return cfg


def their_trainer(args):
    """Their trainer object with their model (built by their code) and what forward_backward reads."""
    method, options = METHODS[args.method]
    module = import_their_trainer(method, args.repo, args.dassl, BACKBONE, args.weights)
    cfg = build_cfg(THEIR_SUCCESSORS[method].config_node, options, args.input_size, GPA_EPOCHS)
    torch.manual_seed(0)
    clip_model = module.load_clip_to_cpu(cfg)
    model = module.CustomCLIP(cfg, CLASSNAMES, clip_model).float()
    for name, param in model.named_parameters():  # their build_model's selection
        param.requires_grad_(("prompt_learner" in name or "VPT" in name) and "ZS_image_encoder" not in name)
    cls = getattr(module, THEIR_SUCCESSORS[method].class_name)
    trainer = cls.__new__(cls)  # without TrainerX.__init__ (data loaders)
    trainer.cfg, trainer.model = cfg, model
    trainer.optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    trainer.scaler = None
    trainer.update_lr = lambda: None
    trainer.batch_idx, trainer.num_batches = 0, 2  # not an epoch's last batch
    trainer.step_counter, trainer.previous_model_gpa = 1, None  # PromptSRC's GPA state, as its build_model sets it
    trainer.device = torch.device("cpu")
    trainer._models, trainer._optims, trainer._scheds = OrderedDict(), OrderedDict(), OrderedDict()
    return trainer, module, cfg


def trainable(model):
    return OrderedDict((name, p) for name, p in model.named_parameters() if p.requires_grad)


def step(trainer, images, labels):
    """Their forward_backward on the batch: (loss, {name: stored gradient})."""
    summary = trainer.forward_backward({"img": images, "label": labels})
    grads = {name: stored_gradient(p.grad) for name, p in trainable(trainer.model).items()}
    return summary["loss"], grads


def promptsrc_components(trainer, images, labels):
    """The terms of their PromptSRC loss, from their model's training outputs (their formulas)."""
    import torch.nn.functional as F

    node = trainer.cfg.TRAINER.PROMPTSRC
    with torch.no_grad():
        ce, text, zs_text, zs_image, image, zs_logits, logits = trainer.model(images, labels)
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(zs_logits, dim=1), reduction="sum",
                  log_target=True) / logits.numel()
    components = {"ce_logits": ce, "l1_text": F.l1_loss(text, zs_text) * node.TEXT_LOSS_WEIGHT,
                  "l1_image": F.l1_loss(image, zs_image) * node.IMAGE_LOSS_WEIGHT, "kl_logits": kl}
    features = {"text_features": text, "zs_text_features": zs_text, "image_features": image,
                "zs_image_features": zs_image, "zs_logits": zs_logits, "logits": logits}
    return {k: float(v) for k, v in components.items()}, features


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method", choices=list(METHODS))
    parser.add_argument("--repo", required=True)
    parser.add_argument("--dassl", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    trainer, module, cfg = their_trainer(args)
    model = trainer.model
    if args.method == "maple":  # their Linear layers are too large to store: seeded values instead
        with torch.no_grad():
            for index, param in enumerate(trainable(model).values()):
                param.copy_(seeded_normal(param.shape, VALUE_SEED + 100 + index))
    generator = torch.Generator().manual_seed(INPUT_SEED)
    images = torch.randn(len(LABELS), 3, args.input_size, args.input_size, generator=generator)
    labels = torch.tensor(LABELS)
    values = {name: p.detach().clone() for name, p in trainable(model).items()}
    fixture = {
        "meta": {"method": args.method, "classnames": CLASSNAMES, "options": METHODS[args.method][1],
                 "values": "MaPLe: seeded_normal(shape, VALUE_SEED + 100 + index) in their parameter order; "
                           "otherwise their own initialisation after torch.manual_seed(0)",
                 "large_gradients": f"grad @ seeded_normal((in, {SKETCH_COLUMNS}), VALUE_SEED + 1, std=1)"},
        "images": images, "labels": labels,
        "trainable_names": list(values), "trainable_shapes": {k: list(v.shape) for k, v in values.items()},
        "trainable_values": {k: v for k, v in values.items() if v.numel() <= LARGE},
    }
    model.eval()
    with torch.no_grad():
        fixture["eval"] = {"logits": model(images)}
    model.train()
    loss, grads = step(trainer, images, labels)
    fixture["loss"] = {"epoch0": loss}
    fixture["grads"] = {"epoch0": grads}
    if args.method == "promptsrc":
        fixture["loss_components"] = {}
        fixture["loss_components"]["epoch0"], fixture["features"] = promptsrc_components(trainer, images, labels)
        gpa_run(trainer, images, labels, fixture)
    else:
        with torch.no_grad():
            fixture["train_outputs"] = {"loss": model(images, labels)}
    torch.save(fixture, args.out)


def gpa_run(trainer, images, labels, fixture):
    """PromptSRC over GPA_EPOCHS epochs of one step each at GPA_LR, through their forward_backward: the
    parameters their GPA adds after each epoch, their Gaussian weights, the loss and gradients at
    LATER_EPOCH and the parameters their trainer loads after the last epoch (the GPA average)."""
    import numpy as np

    model = trainer.model
    node = trainer.cfg.TRAINER.PROMPTSRC
    gauss = trainer.get_gauss(node.GPA_MEAN, node.GPA_STD)  # as their build_model does
    trainer.gauss = np.array([gauss(a) for a in range(1, GPA_EPOCHS + 1)])
    trainer.gauss = trainer.gauss / sum(trainer.gauss)
    trainer.optim = torch.optim.SGD(list(trainable(model).values()), lr=GPA_LR)
    trainer.batch_idx, trainer.num_batches = 0, 1  # every step ends an epoch
    added = []  # what their GPA adds after each epoch
    weighting = trainer.state_dict_weighting

    def recording_weighting(state, weight, *rest):
        added.append({key: state[key].clone() for key in trainable(model)})
        return weighting(state, weight, *rest)

    trainer.state_dict_weighting = recording_weighting
    for epoch in range(GPA_EPOCHS):
        if epoch == LATER_EPOCH:
            fixture["values_later"] = {k: v.detach().clone() for k, v in trainable(model).items()}
            loss, grads = step(trainer, images, labels)
            fixture["loss"][f"epoch{epoch}"] = loss
            fixture["grads"][f"epoch{epoch}"] = grads
        else:
            step(trainer, images, labels)
    fixture["gpa"] = {"weights": torch.from_numpy(np.asarray(trainer.gauss, dtype=np.float64)), "per_epoch": added,
                      "average": {k: v.detach().clone() for k, v in trainable(model).items()}}


if __name__ == "__main__":
    main()
