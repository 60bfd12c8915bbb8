"""configs/trainers: the CoOp / CoCoOp recipes carry the names and values of the CoOp repository."""
import glob
import os.path as osp

import pytest
from conftest import ROOT

from dassl_compat import get_cfg_default
from trainers.config import extend_cfg

# The released recipes (toy.yaml, the offline demo's small-model recipe, is run by test_demo.py).
CONFIG_FILES = sorted(p for p in glob.glob(osp.join(ROOT, "configs", "trainers", "CoOp", "*.yaml"))
                      + glob.glob(osp.join(ROOT, "configs", "trainers", "CoCoOp", "*.yaml"))
                      if osp.basename(p) != "toy.yaml" and not osp.basename(p).startswith("openclip_"))


def test_config_files_cover_the_coop_repository_names():
    names = {osp.relpath(p, osp.join(ROOT, "configs", "trainers"))[:-5] for p in CONFIG_FILES}
    for backbone in ("rn50", "rn101", "vit_b16", "vit_b32"):
        assert {f"CoOp/{backbone}", f"CoOp/{backbone}_ep50", f"CoOp/{backbone}_ep100"} <= names
    assert {"CoOp/rn50_ctxv1", "CoOp/rn50_ep50_ctxv1", "CoOp/vit_b16_ctxv1", "CoOp/vit_b16_ep50_ctxv1",
            "CoOp/vit_b16_ep100_ctxv1"} <= names
    assert {"CoCoOp/vit_b16_c4_ep10_batch1", "CoCoOp/vit_b16_c8_ep10_batch1", "CoCoOp/vit_b16_c16_ep10_batch1",
            "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: osp.relpath(p, ROOT))
def test_config_file_merges_and_holds_the_released_values(path):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(path)  # yacs raises on any key our config does not declare
    name = osp.basename(path)[:-5]
    assert cfg.INPUT.SIZE == (224, 224) and cfg.INPUT.INTERPOLATION == "bicubic"
    assert list(cfg.INPUT.PIXEL_MEAN) == [0.48145466, 0.4578275, 0.40821073]
    assert list(cfg.INPUT.PIXEL_STD) == [0.26862954, 0.26130258, 0.27577711]
    assert cfg.DATALOADER.NUM_WORKERS == 8
    if name == "rn50_val":
        assert cfg.DATALOADER.TEST.BATCH_SIZE == 200
        return
    backbone = {"rn50": "RN50", "rn101": "RN101", "vit_b16": "ViT-B/16", "vit_b32": "ViT-B/32"}
    assert cfg.MODEL.BACKBONE.NAME == backbone[name.split("_c")[0].split("_ep")[0]]
    assert list(cfg.INPUT.TRANSFORMS) == ["random_resized_crop", "random_flip", "normalize"]
    assert cfg.DATALOADER.TEST.BATCH_SIZE == 100
    assert (cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.LR_SCHEDULER) == ("sgd", 0.002, "cosine")
    assert (cfg.OPTIM.WARMUP_EPOCH, cfg.OPTIM.WARMUP_TYPE, cfg.OPTIM.WARMUP_CONS_LR) == (1, "constant", 1e-5)
    ctx_init = "a photo of a" if name.endswith("_ctxv1") else ""
    if "/CoCoOp/" in path:
        n_ctx = int(name.split("_c")[1].split("_")[0])
        assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH, cfg.TRAIN.PRINT_FREQ) == (1, 10, 20)
        assert (cfg.TRAINER.COCOOP.N_CTX, cfg.TRAINER.COCOOP.CTX_INIT, cfg.TRAINER.COCOOP.PREC) == (n_ctx, ctx_init,
                                                                                                   "fp16")
    else:
        epochs = int(name.split("_ep")[1].split("_")[0]) if "_ep" in name else 200
        assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH, cfg.TRAIN.PRINT_FREQ) == (32, epochs, 5)
        assert cfg.TRAINER.COOP.CTX_INIT == ctx_init
