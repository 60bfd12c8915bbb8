"""Linear-probe CLIP: a logistic regression on frozen CLIP image features, the few-shot baseline of CoOp
and DPT (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML
2021, appendix A.3; the CoOp repository's `lpclip/`).

Features: `clip_model.encode_image` of each image under the test transform (no augmentation, as
lpclip), unnormalised, float32. They are cached per (dataset, backbone, split) as a plain `.npz`
(`impaths` [N] str, `features` [N, E] float32; read with allow_pickle=False) under
`<FEATURE_DIR>/<dataset>/<backbone>_<split>_<fingerprint>.npz`; the fingerprint hashes the weights file
and the input pipeline (size, interpolation, mean, std, precision), so any change starts a new cache. A
run extracts only the images the cache lacks: the test set once, the few-shot samples of every shot
count and seed as they come.

The regularisation strength C is searched as lpclip does: scikit-learn's LogisticRegression (L-BFGS,
L2, max_iter 1000) is fitted on the few-shot training sample for each C of a coarse grid (1e6, 1e4,
..., 1e-6), the best by accuracy on the few-shot validation sample (the first on ties) gives a bracket
[C/10, 10 C], and SEARCH_STEPS bisection steps in log10(C) each fit both ends, keep the better end
(the right one only if strictly better) and halve the bracket towards it. The C of the last step is
the result, fitted on the training sample and kept as a linear head (a plain checkpoint).
"""
import hashlib
import os
import os.path as osp
import re
from functools import cached_property

import numpy as np
import torch
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dassl_compat.images import to_rgb8
from dpt_models.errors import UserError
from dpt_models.linear_probe import LinearProbeCLIP, linear_head
from dpt_runs.options import non_negative_int, positive_float, positive_int, sequence_of

from .base import ClipPromptTrainer, precision

COARSE_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)


def extend_cfg(cfg):
    """TRAINER.LINEAR_PROBE: the search of C, the solver's iterations and the feature cache."""
    cfg.TRAINER.LINEAR_PROBE = CN()
    cfg.TRAINER.LINEAR_PROBE.PREC = "fp32"  # precision of the feature extraction
    cfg.TRAINER.LINEAR_PROBE.C_GRID = COARSE_GRID  # the coarse grid of C, searched first
    cfg.TRAINER.LINEAR_PROBE.SEARCH_STEPS = 8  # bisection steps in log10(C) after the grid (lpclip: 8)
    cfg.TRAINER.LINEAR_PROBE.MAX_ITER = 1000  # L-BFGS iterations of each fit
    cfg.TRAINER.LINEAR_PROBE.FEATURE_DIR = ""  # feature cache; "" = <DATASET.ROOT>/clip_features


OPTIONS = {
    "TRAINER.LINEAR_PROBE": {
        "PREC": precision,
        "C_GRID": sequence_of(positive_float),
        "SEARCH_STEPS": non_negative_int,
        "MAX_ITER": positive_int,
    }
}


def fit_logistic_regression(features, labels, c, max_iter=1000):
    """scikit-learn's multinomial logistic regression (L-BFGS, L2 penalty 1 / C), fitted from zero."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=max_iter).fit(features, labels)


def search_c(train, val, grid=COARSE_GRID, steps=8, max_iter=1000):
    """lpclip's search of C (module docstring). train, val: (features [N, E], labels [N]).

    Returns (C, history), history a list of (C, validation accuracy) in the order they were tried.
    """
    history = []

    def val_accuracy(c):
        accuracy = float((fit_logistic_regression(*train, c, max_iter).predict(val[0]) == val[1]).mean())
        history.append((c, accuracy))
        return accuracy

    grid_accuracy = [val_accuracy(c) for c in grid]
    peak = grid[int(np.argmax(grid_accuracy))]
    log_left, log_right = np.log10(peak) - 1, np.log10(peak) + 1
    best = peak
    for _ in range(steps):
        left, right = 10.0**log_left, 10.0**log_right
        if val_accuracy(left) < val_accuracy(right):
            best = right
            log_left = (log_left + log_right) / 2
        else:
            best = left
            log_right = (log_left + log_right) / 2
    return best, history


class FeatureCache:
    """Image features of one (dataset, backbone, split) in a plain .npz, extended on demand.

    `encode(paths)` computes features [n, E] of image files; `get(paths)` returns [len(paths), E] in
    that order, computing (and saving) only the paths the file lacks.
    """

    def __init__(self, path, encode):
        self.path = path
        self.encode = encode

    def load(self):
        if not osp.isfile(self.path):
            return {}
        with np.load(self.path, allow_pickle=False) as stored:
            return dict(zip(stored["impaths"].tolist(), stored["features"]))

    def get(self, paths):
        known = self.load()
        missing = [p for p in dict.fromkeys(paths) if p not in known]
        if missing:
            known.update(zip(missing, self.encode(missing)))
            self.save(known)
        return np.stack([known[p] for p in paths]).astype(np.float32)

    def save(self, features):
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        staging = f"{self.path}.{os.getpid()}.tmp.npz"
        np.savez(staging, impaths=np.asarray(list(features), dtype=str),
                 features=np.stack(list(features.values())).astype(np.float32))
        os.replace(staging, self.path)  # atomic: a concurrent reader sees the old file or the new one


@TRAINER_REGISTRY.register()
class LinearProbe(ClipPromptTrainer):
    """Linear-probe CLIP (TRAINER.LINEAR_PROBE): `train()` fits the head, saves it and tests it.

    The head is registered as `linear_head` without an optimiser: scikit-learn fits it.
    """

    config_node = "LINEAR_PROBE"
    model_class = LinearProbeCLIP
    default_config = "LinearProbe/vit_b16"
    benchmarked = False  # scikit-learn fits it: no training step to time

    def trainable_modules(self, model):
        return {"linear_head": model.head}

    def register_trainable_modules(self):
        for name, module in self.trainable_modules(self.model).items():
            self.register_model(name, module)

    @cached_property
    def feature_fingerprint(self):
        """12 hex digits hashing the CLIP weights file and the input pipeline that features depend on."""
        cfg = self.backbone_input_cfg or self.cfg  # an open_clip model's own preprocessing, where it has one
        weights = self.weight_record["backbone_weights"]
        pipeline = repr((cfg.INPUT.SIZE, cfg.INPUT.INTERPOLATION, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD,
                         self.precision))
        return hashlib.sha1(f"{weights} {pipeline}".encode()).hexdigest()[:12]

    def model_backward_and_update(self, loss, names=None):
        """The head has no optimiser (`train()` fits it with scikit-learn): a training step of the
        skeleton's `forward_backward` only computes the gradients of the cross-entropy."""
        self.detect_anomaly(loss)
        self.model.head.zero_grad()
        loss.backward()

    def feature_cache(self, split):
        cfg = self.cfg
        folder = self.method_cfg.FEATURE_DIR or osp.join(cfg.DATASET.ROOT, "clip_features")
        backbone = re.sub(r"[^A-Za-z0-9.@-]+", "-", cfg.MODEL.BACKBONE.NAME)
        name = f"{backbone}_{split}_{self.feature_fingerprint}.npz"
        return FeatureCache(osp.join(folder, cfg.DATASET.NAME, name), self.encode_files)

    @torch.no_grad()
    def encode_files(self, paths, batch_size=128):
        """Features [N, E] (float32 numpy) of image files under the test transform."""
        from PIL import Image

        features = []
        for start in range(0, len(paths), batch_size):
            images = []
            for path in paths[start : start + batch_size]:
                with Image.open(path) as image:
                    images.append(self.test_transform(to_rgb8(image)))
            with self.autocast():
                batch = self.model.clip_model.encode_image(torch.stack(images).to(self.device))
            features.append(batch.float().cpu().numpy())
        return np.concatenate(features)

    def split_features(self, split, items):
        """(features [N, E], labels [N]) of a list of Datum, through the split's cache."""
        return self.feature_cache(split).get([item.impath for item in items]), np.array([i.label for i in items])

    def train(self):
        node = self.method_cfg
        train = self.split_features("train", self.dm.dataset.train_x)
        n_train_classes = len(np.unique(train[1]))
        if n_train_classes < 2:
            raise UserError(
                f"The linear probe needs images of at least 2 classes in its training sample; "
                f"{self.cfg.DATASET.NAME} with DATASET.NUM_SHOTS {self.cfg.DATASET.NUM_SHOTS} gave "
                f"{len(train[1])} images of {n_train_classes} class. Use a dataset (or DATASET.SUBSAMPLE_CLASSES) "
                "with 2 classes or more."
            )
        val_items = self.dm.dataset.val
        if not val_items:
            raise UserError(
                f"The linear probe searches C on the validation split, and {self.cfg.DATASET.NAME} has none. "
                "Use a dataset with a val split."
            )
        val = self.split_features("val", val_items)
        c, history = search_c(train, val, tuple(node.C_GRID), node.SEARCH_STEPS, node.MAX_ITER)
        print(f"Linear probe: {len(train[1])} training and {len(val[1])} validation images")
        for tried, accuracy in history:
            print(f"  C = {tried:.6g}: val accuracy {100 * accuracy:.1f}%")
        print(f"Chosen C = {c:.6g}")
        fitted = linear_head(fit_logistic_regression(*train, c, node.MAX_ITER), self.num_classes)
        self.model.head.load_state_dict(fitted.state_dict())
        self.save_model(self.max_epoch - 1, self.output_dir)  # model.pth.tar-<MAX_EPOCH>, what evaluation loads
        if not self.cfg.TEST.NO_TEST:
            self.test()

    @torch.no_grad()
    def test(self, split=None):
        """Accuracy of the head on the cached features of `split` (TEST.SPLIT by default)."""
        split = split or self.cfg.TEST.SPLIT
        items = self.dm.dataset.val if split == "val" and self.dm.dataset.val else self.dm.dataset.test
        split = "val" if items is self.dm.dataset.val else "test"
        print(f"Evaluate on the *{split}* set")
        features, labels = self.split_features(split, items)
        self.evaluator.reset()
        self.model.eval()
        for start in range(0, len(labels), 1024):
            batch = torch.from_numpy(features[start : start + 1024]).to(self.device)
            batch_labels = torch.from_numpy(labels[start : start + 1024]).to(self.device)
            self.evaluator.process(self.model.head(batch), batch_labels)
        return list(self.evaluator.evaluate().values())[0]
