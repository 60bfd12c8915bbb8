"""The one trainer skeleton of every method here (Dassl's build_model + forward_backward, filled in).

`ClipPromptTrainer.build_model` loads CLIP, calls the method's `build_clip_model(clip_model,
classnames)`, registers the trainable modules (each with its own optimiser, scheduler and checkpoint
folder) and freezes everything else; `forward_backward` runs the model under the configured precision
and calls `compute_loss(outputs, labels) -> (loss, components)`. Every model returns a dict with at
least `logits` [B, C]. What a method writes is listed once, in `ClipPromptTrainer`'s docstring.

The skeleton also owns precision modes, parameter-count logging, loading the only trained module
from MODEL.INIT_WEIGHTS and multi-process (DDP) training. `registered_methods()` is the one list of
methods: the tools, the plugin and the tests derive theirs from it.
"""
import contextlib
import inspect
import sys
from functools import cached_property

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

import dassl_compat
from dassl_compat import (
    TrainerX,
    build_lr_scheduler,
    build_optimizer,
    compute_accuracy,
    count_num_param,
    load_checkpoint,
    load_pretrained_weights,
)
from dassl_compat.lite.optim import AVAILABLE_OPTIMIZERS, AVAILABLE_SCHEDULERS, AVAILABLE_WARMUPS
from dpt_models import open_clip_backbone
from dpt_models.clip_backbone import load_clip_from_cfg
from dpt_models.errors import UserError
from dpt_models.templates import template_for
from dpt_models.text import PromptLearner, PromptTooLong, TextEncodingSwitch
from dpt_runs import weights_record
from dpt_runs.checkpoint import load_module_weights
from dpt_runs.options import (
    check_options,
    choice,
    integer,
    merged_schemas,
    non_negative_float,
    non_negative_int,
    number,
    positive_float,
    positive_int,
    sequence_of,
)

PRECISIONS = ("fp32", "fp16", "amp", "bf16")
precision = choice(*PRECISIONS)  # the rule of every TRAINER.<NAME>.PREC
HOW_TO_GET_A_VAL_SPLIT = (
    "ImageFolder: a val/ folder of the same class folders beside train/ and test/, or one folder of classes, "
    "which is split 50/20/30 into train/val/test; a benchmark: its split_zhou_*.json file, see DATASETS.md"
)


def extend_cfg(cfg):
    """The keys every trainer here reads besides its own TRAINER.<NAME> node."""
    # Where CLIP weights come from: MODEL.BACKBONE.NAME is an OpenAI name (ViT-B/16, RN50, ...) or
    # open_clip:<model> (open_clip_backbone.py); PATH, when set, is a checkpoint file to load instead of
    # ~/.cache/clip/<file>; OPEN_CLIP_PRETRAINED is an open_clip model's weight tag (laion2b_s34b_b88k, ...):
    # a key of our own, because a Dassl harness keeps Dassl's boolean PRETRAINED (dpt_plugin). PRETRAINED
    # as a tag is still read where it is a string (this project's engine and train.py).
    cfg.MODEL.BACKBONE.PATH = ""
    cfg.MODEL.BACKBONE.OPEN_CLIP_PRETRAINED = ""
    cfg.MODEL.BACKBONE.PRETRAINED = ""
    # Save a resumable state after every epoch (Dassl's default 0 saves only the last one, so an
    # interrupted run started again from scratch); only the last two epochs' files are kept.
    cfg.TRAIN.CHECKPOINT_FREQ = 1
    # Gradient checkpointing of the text encoder while training (memory for many classes, e.g. ImageNet).
    cfg.MODEL.TEXT_GRAD_CHECKPOINT = False
    # Encode the `[SOS] ctx` prefix that all classes share once instead of once per class (exact;
    # shared context with the class token at the end; CoCoOp: once per image). False: full prompts.
    cfg.MODEL.TEXT_SHARED_PREFIX = True
    # A training run that cannot learn (no trainable parameter, OPTIM.MAX_EPOCH <= 0, no epoch after a
    # module's warmup) is an error; True runs it anyway (a smoke test, a deliberately untrained baseline).
    cfg.TRAIN.ALLOW_NO_LEARNING = False


# The rules of the shared keys the trainers read (dpt_runs.options). Checked where CLIP is loaded:
# MODEL.BACKBONE.NAME / PATH (a known name, an existing file) and INPUT.SIZE = the backbone's input
# resolution (`check_input_size`).
OPTIONS = {
    "OPTIM": {
        "NAME": choice(*AVAILABLE_OPTIMIZERS),
        "LR": non_negative_float,  # 0 keeps the trained parameters as initialised (tests/test_interpret_prompt.py)
        "MAX_EPOCH": non_negative_int,
        "LR_SCHEDULER": choice(*AVAILABLE_SCHEDULERS),
        "WARMUP_EPOCH": integer,  # <= 0: no warmup
        "WARMUP_TYPE": choice(*AVAILABLE_WARMUPS),
        "WARMUP_CONS_LR": non_negative_float,
        "WARMUP_MIN_LR": non_negative_float,
        "WEIGHT_DECAY": non_negative_float,
        "MOMENTUM": non_negative_float,
        "GAMMA": positive_float,
    },
    "INPUT": {
        "SIZE": sequence_of(positive_int, length=2),
        "INTERPOLATION": choice("bilinear", "bicubic", "nearest"),
        "PIXEL_MEAN": sequence_of(number, length=3),
        "PIXEL_STD": sequence_of(positive_float, length=3),
    },
    "DATALOADER": {"NUM_WORKERS": non_negative_int},
    "DATALOADER.TRAIN_X": {"BATCH_SIZE": positive_int},
    "DATALOADER.TRAIN_U": {"BATCH_SIZE": positive_int},
    "DATALOADER.TEST": {"BATCH_SIZE": positive_int},
    "TRAIN": {"CHECKPOINT_FREQ": non_negative_int, "PRINT_FREQ": positive_int},
    "TEST": {"SPLIT": choice("val", "test"), "FINAL_MODEL": choice("last_step", "best_val")},
}


class ClipPromptTrainer(TrainerX):
    """A Dassl TrainerX around a frozen CLIP. A method is a subclass registered with
    `@TRAINER_REGISTRY.register()` in its own module of `trainers/` (or a `train.py --plugin` file), whose
    model is an `nn.Module` in `dpt_models/`.

    The module defines `extend_cfg(cfg)`, adding the method's `TRAINER.<config_node>` node (with `PREC`),
    and beside it `OPTIONS = {"TRAINER.<NAME>": {"N_CTX": positive_int, "PREC": precision, ...}}`: the
    rule of each key (`dpt_runs.options`: positive_int, non_negative_float, choice("end", "middle",
    "front"), ...). train.py checks every declared rule before anything runs and reports a bad value as
    one error naming the key, the value and what is allowed.

    The class sets (class attributes):
        config_node: the method's config node, TRAINER.<config_node> (required).
        model_class: its model, `model_class(clip_model, classnames, **options)` with `forward(images
            [B, 3, H, W])` returning a dict with at least `logits` [B, C] (required; the model tests build
            every registered model_class with its defaults).
        default_config: the shipped config `<folder>/<name>` (configs/trainers/) that dpt-benchmark uses;
            its folder also holds the method's `toy.yaml` (dpt-demo). "" for none.
        class_dependent_keys: state-dict key parts that depend on the class set (class-name buffers,
            per-class heads), dropped when weights are loaded for other classes (default: none).
        requires_vit: True if it prompts the ViT's blocks (a ResNet backbone is refused; default False).
        eval_only: True if nothing is trained (zero-shot): run with --eval-only (default False).
        benchmarked: False to leave it out of dpt-benchmark (default True).
        in_plugin: True to offer it to a host Dassl harness through `dpt_plugin.setup` (default False).
        weight_options: keys of TRAINER.<config_node> that shape the learned weights or give them their
            meaning; checkpoints record them, and loading under other values is refused
            (dpt_runs/weights_record.py; default: none).
        shares_config_files_with: trainers whose config files this one runs with, so their TRAINER sections
            are not another trainer's (zero-shot CLIP runs with CoOp's; default: none).

    and overrides:
        build_clip_model(clip_model, classnames): only if the model needs options from the config
            (default: `model_class(clip_model, classnames)`); it reads only the config (a run folder's model
            is rebuilt without a dataset: `build_model_from_cfg`);
        trainable_modules(model): only if the trained modules are not the top-level ones with trainable
            parameters (LinearProbe's head);
        compute_loss(outputs, labels) -> (loss, {name: value to log}): unless its loss is CE of `logits`;
        check_method_cfg(node): rules that relate several keys of its node (a UserError naming them);
        optim_cfg_for(module_name): a module trained with other settings than OPTIM.
        backward_and_update(loss, components): a step that needs more than the loss's gradient (ProGrad's
            projection; default: backward and step every optimiser).

    Precision, from `cfg.TRAINER.<config_node>.PREC`: "fp32"; "fp16" / "amp" (fp16 autocast with a
    GradScaler, fp32 master parameters; fp32 on a CPU); "bf16" (bf16 autocast). Parameters always stay fp32, so
    small updates are never rounded away (the reference's pure-fp16 updates lose them).
    """

    config_node = ""
    model_class = None
    default_config = ""
    requires_vit = False
    eval_only = False
    benchmarked = True
    in_plugin = False
    weight_options = ()
    shares_config_files_with = ()

    def __init__(self, cfg):
        self.preloaded_clip = None
        self.backbone_input_cfg = None  # cfg with the backbone's own INPUT settings, for the data transforms
        if open_clip_backbone.is_open_clip(cfg.MODEL.BACKBONE.NAME):
            # The model's own preprocessing decides the data transforms, built before the model.
            self.preloaded_clip = self.load_clip(cfg)
            settings = open_clip_backbone.preprocess_settings(self.preloaded_clip)
            self.backbone_input_cfg = with_input_settings(cfg, settings)
        super().__init__(cfg)
        if is_distributed():
            self.distribute()

    def distribute(self):
        """Under torchrun: each process trains on its share of every batch through torch's DDP.

        The training batch of the config is the global batch (BATCH_SIZE / world size per process);
        DistributedSampler shuffles with the run's seed. The model is wrapped in
        DistributedDataParallel (gradients of the trainable parameters are averaged across processes);
        registered modules stay the unwrapped ones, so checkpoints are the same as in one process.
        Evaluation runs in every process on the whole test set; only rank 0 prints and saves.
        """
        world_size = dist.get_world_size()
        batch_size = self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE
        if batch_size % world_size:
            raise UserError(
                f"DATALOADER.TRAIN_X.BATCH_SIZE ({batch_size}) must be divisible by the number of processes "
                f"({world_size}): it is the global batch, split evenly across processes"
            )
        loader = self.train_loader_x
        self.train_loader_x = DataLoader(
            loader.dataset,
            batch_size=batch_size // world_size,
            sampler=DistributedSampler(loader.dataset, shuffle=True, seed=max(self.cfg.SEED, 0), drop_last=True),
            num_workers=loader.num_workers,
            drop_last=True,
            pin_memory=loader.pin_memory,
        )
        if any(p.requires_grad for p in self.model.parameters()):  # zero-shot CLIP has nothing to train
            device_ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
                if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=device_ids, **ddp_options())

    def train(self):
        self.check_training_cfg()
        super().train()

    def check_training_cfg(self):
        """Before training: the test split decides nothing, and the run can learn (see check_can_learn)."""
        if self.cfg.TEST.FINAL_MODEL == "best_val" and not self.cfg.TEST.NO_TEST and not self.dm.dataset.val:
            raise UserError(
                f"TEST.FINAL_MODEL best_val picks the epoch with the best validation accuracy, but "
                f"{self.cfg.DATASET.NAME} has no validation split: the epoch would be chosen on the test split. "
                f"Use TEST.FINAL_MODEL last_step, or give the dataset a validation split ({HOW_TO_GET_A_VAL_SPLIT})."
            )
        if not self.cfg.TRAIN.ALLOW_NO_LEARNING:
            self.check_can_learn()

    def check_can_learn(self):
        """A UserError when training would learn nothing: no trainable parameter, OPTIM.MAX_EPOCH <= 0, or
        a module (with an optimiser) whose warmup lasts every epoch (it never reaches its learning rate)."""
        allow = "Or set TRAIN.ALLOW_NO_LEARNING True if a run that learns nothing is what you mean (a smoke test)."
        name = type(self).__name__
        if not any(p.numel() for p in self.model.parameters() if p.requires_grad):
            raise UserError(
                f"{name} has no trainable parameters with these options (Trainable parameters: 0): training would "
                f"report the untrained model as a result. Check the options that size what {name} learns "
                f"(TRAINER.{self.config_node}.*, e.g. a context length N_CTX 0), or evaluate it with --eval-only. "
                + allow
            )
        max_epoch = self.cfg.OPTIM.MAX_EPOCH
        if max_epoch <= 0:
            raise UserError(
                f"OPTIM.MAX_EPOCH is {max_epoch}: no epoch would train, and the untrained model would be reported "
                f"as the last-epoch model. Set OPTIM.MAX_EPOCH to 1 or more. " + allow
            )
        for module in self.get_model_names():
            optim_cfg = self.optim_cfg_for(module)
            if self._optims[module] is not None and optim_cfg.WARMUP_EPOCH >= max_epoch:
                raise UserError(
                    f"{name}'s module {module} warms up for {optim_cfg.WARMUP_EPOCH} epochs (OPTIM.WARMUP_EPOCH, "
                    f"or the method's own warmup option) and OPTIM.MAX_EPOCH is {max_epoch}: every epoch would run "
                    f"at the warmup learning rate ({optim_cfg.WARMUP_TYPE} warmup) and the run would end before "
                    f"learning at OPTIM.LR. Set OPTIM.MAX_EPOCH above {optim_cfg.WARMUP_EPOCH}, or lower the warmup. "
                    + allow
                )

    def set_model_mode(self, mode="train", names=None):
        """Dassl switches only the registered modules; here the whole model follows, since it reads
        its own `training` flag (the text features cached per evaluation, training-only outputs).
        Frozen CLIP parts stay in eval mode, as loaded (and as in the reference, whose BatchNorm
        statistics of ResNet backbones never update)."""
        super().set_model_mode(mode, names)
        model = getattr(self, "model", None)
        if names is None and model is not None:
            model.train(mode == "train")
            keep_frozen_modules_in_eval(model)

    def before_epoch(self):
        super().before_epoch()
        if isinstance(getattr(self.train_loader_x, "sampler", None), DistributedSampler):
            self.train_loader_x.sampler.set_epoch(self.epoch)

    def save_model(self, *args, **kwargs):
        if is_main_process():
            super().save_model(*args, **kwargs)

    def init_writer(self, log_dir):
        if is_main_process():
            super().init_writer(log_dir)

    def class_specific_keys(self, name):
        """The class-specific context (CSC, [C, n_ctx, D]) of every prompt learner in model `name`."""
        return {
            f"{prefix}.ctx".lstrip(".")
            for prefix, module in self._models[name].named_modules()
            if isinstance(module, PromptLearner) and module.ctx.dim() == 3
        }

    def weight_option_keys(self):
        return [f"TRAINER.{self.config_node}.{key}" for key in self.weight_options]

    @cached_property
    def weight_record(self):
        """The backbone (name, weights fingerprint) and the weight-shaping options of this run."""
        cfg = self.cfg
        options = {key: cfg.TRAINER[self.config_node][key.rsplit(".", 1)[1]] for key in self.weight_option_keys()}
        weights_id = weights_record.backbone_weights_id(cfg.MODEL.BACKBONE, weight_tag(cfg.MODEL.BACKBONE))
        return weights_record.describe_weights(cfg.MODEL.BACKBONE.NAME, weights_id, options)

    def checkpoint_meta(self):
        return {**super().checkpoint_meta(), "weights": self.weight_record}

    def load_model(self, directory, epoch=None, allow_mismatch=False):
        """Dassl's load_model (the bundled checkpoint I/O), refusing a `directory` whose recorded config has
        another backbone or other weight-shaping options, unless `allow_mismatch`."""
        if directory and not allow_mismatch:
            weights_record.check_model_dir_config(self.cfg, directory, self.weight_option_keys())
        super().load_model(directory, epoch=epoch, allow_mismatch=allow_mismatch)

    def _check_meta(self, name, model_path, meta):
        super()._check_meta(name, model_path, meta)
        weights_record.check_checkpoint_record(model_path, meta, self.weight_record)

    def resume_state(self):
        return {**super().resume_state(), "grad_scaler": self.grad_scaler.state_dict()}

    def restore_resume_state(self, state):
        super().restore_resume_state(state)
        if state["grad_scaler"]:
            self.grad_scaler.load_state_dict(state["grad_scaler"])

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.config_node]

    @property
    def template(self):
        """The dataset's hand-written zero-shot template ("a photo of a {}." when it has none)."""
        return template_for(self.cfg.DATASET.NAME)

    @property
    def precision(self):
        """TRAINER.<node>.PREC, but fp32 for fp16 / amp on a CPU: fp16 autocast there is slower than fp32
        and gains nothing (bf16 stays as configured)."""
        if self.method_cfg.PREC in ("fp16", "amp") and self.device.type == "cpu":
            return "fp32"
        return self.method_cfg.PREC

    def check_cfg(self, cfg):
        """The declared option rules (the shared OPTIONS above, the trainer module's OPTIONS and PREC),
        the backbone kind, then `check_method_cfg`. train.py has checked every declared rule already;
        this is the check of harnesses that build the trainer themselves (dpt_plugin, Dassl's train.py)."""
        node = cfg.TRAINER[self.config_node]
        module_options = getattr(sys.modules[type(self).__module__], "OPTIONS", {})
        own_precision = {f"TRAINER.{self.config_node}": {"PREC": precision}}
        check_options(cfg, merged_schemas(own_precision, OPTIONS, module_options))
        backbone = cfg.MODEL.BACKBONE.NAME
        if self.requires_vit and backbone.startswith("RN"):
            raise UserError(
                f"{type(self).__name__} prompts a Vision Transformer; MODEL.BACKBONE.NAME {backbone!r} "
                "is a ResNet. Use ViT-B/16, ViT-B/32, ..."
            )
        self.check_method_cfg(node)

    def check_method_cfg(self, node):
        """Rules that relate several keys of the method's config node (raise a UserError naming them); the
        rules of single keys are declared in the module's OPTIONS. None by default."""

    def build_data_loader(self):
        """Dassl's data loaders; with an open_clip backbone, their transforms use the model's own size,
        interpolation, mean and std (the run's cfg keeps the options as given, so that the config
        recorded in the output folder is the one the user wrote)."""
        if self.backbone_input_cfg is None:
            super().build_data_loader()
        else:
            cfg, self.cfg = self.cfg, self.backbone_input_cfg  # Dassl's build_data_loader reads self.cfg
            try:
                super().build_data_loader()
            finally:
                self.cfg = cfg
        if self.cfg.TEST.SPLIT == "val" and not self.dm.dataset.val:
            raise UserError(
                f"TEST.SPLIT val evaluates the validation split, but {self.cfg.DATASET.NAME} has none: the test "
                f"split would be evaluated in its place. Use TEST.SPLIT test, or give the dataset a validation "
                f"split ({HOW_TO_GET_A_VAL_SPLIT})."
            )

    @property
    def test_transform(self):
        """The test-time transform of the data loaders (PIL image -> [3, H, W]); Dassl's DataManager keeps
        no attribute for it, so it is read from the test loader's dataset, as both engines build it."""
        return self.test_loader.dataset.transform

    def load_clip(self, cfg):
        backbone = cfg.MODEL.BACKBONE
        pretrained = weight_tag(backbone)
        print(f"Loading CLIP (backbone: {backbone.NAME}{', file: ' + backbone.PATH if backbone.PATH else ''}"
              f"{', weights: ' + pretrained if pretrained else ''})")
        return load_backbone(cfg)

    def build_model(self):
        """CLIP -> the method's model -> trainable modules registered, everything else frozen."""
        clip_model, self.preloaded_clip = self.preloaded_clip or self.load_clip(self.cfg), None
        if self.backbone_input_cfg is None:  # an open_clip model's own preprocessing sets the size
            check_input_size(self.cfg, clip_model)
        print(f"Building {type(self).__name__}")
        if self.precision != self.method_cfg.PREC:
            print(f"TRAINER.{self.config_node}.PREC {self.method_cfg.PREC}: running in fp32 on the CPU (fp16 is "
                  f"slower there; TRAINER.{self.config_node}.PREC bf16 is mixed precision on a CPU)")
        self.model = self.model_for_classes(clip_model, self.dm.dataset.classnames)
        self.model.to(self.device)
        self.register_trainable_modules()
        trained = {id(p) for name in self.get_model_names() for p in self._models[name].parameters()}
        for param in self.model.parameters():
            param.requires_grad_(id(param) in trained)
        if self.cfg.MODEL.INIT_WEIGHTS:
            self.load_init_weights(self.cfg.MODEL.INIT_WEIGHTS)
        self.log_trainable_parameters(self.model)

    @classmethod
    def build_model_from_cfg(cls, cfg, clip_model, classnames, checkpoints=None):
        """The method's model for `classnames` around a loaded CLIP, from `cfg` alone: no dataset, optimiser
        or engine (how a trained run is rebuilt from its config and the class names its checkpoints record,
        dpt_tools/run_folder.py). `checkpoints`, {module name: checkpoint file}, loads every trained module;
        without it the parameters stay as initialised (the current random state)."""
        configured = cls.__new__(cls)  # build_clip_model and trainable_modules read the config only
        configured.cfg = cfg
        model = configured.model_for_classes(clip_model, classnames)
        for name, module in configured.trainable_modules(model).items() if checkpoints is not None else ():
            if name not in checkpoints:
                raise UserError(
                    f"No checkpoint of {cls.__name__}'s module {name!r} among {sorted(checkpoints)}: the run "
                    f"folder is incomplete or another trainer's. Pass the --output-dir of a finished run."
                )
            load_module_weights(module, name, checkpoints[name], load_checkpoint(checkpoints[name]),
                                cls.is_class_dependent)
        return model

    def model_for_classes(self, clip_model, classnames):
        """`build_clip_model` with MODEL's text-encoding switches set; a prompt longer than the text encoder
        takes is a UserError."""
        try:
            model = self.build_clip_model(clip_model, classnames)
        except PromptTooLong as err:
            raise self.prompt_too_long_error(err) from err
        if isinstance(model, TextEncodingSwitch):
            model.set_text_encoding(self.cfg.MODEL.TEXT_GRAD_CHECKPOINT, self.cfg.MODEL.TEXT_SHARED_PREFIX)
        return model

    def prompt_too_long_error(self, err):
        """The UserError of a prompt longer than the text encoder's context: the class, and the key to change."""
        node, key = self.method_cfg, f"TRAINER.{self.config_node}"
        excess = err.n_tokens - err.context_length
        fix = "shorten that class name (the dataset's class names or split file)"
        if err.context_tokens > excess and node.get("CTX_INIT"):
            fix = f"shorten {key}.CTX_INIT ({node.CTX_INIT!r}) by {excess} tokens, or " + fix
        elif err.context_tokens > excess and "N_CTX" in node:
            fix = f"lower {key}.N_CTX ({node.N_CTX}) to {node.N_CTX - excess} or less, or " + fix
        return UserError(
            f"The prompt of class {err.classname!r} is {err.n_tokens} tokens long ({err.prompt!r} with [SOS] and "
            f"[EOT]); the text encoder takes at most {err.context_length}. To fit, {fix}."
        )

    def build_clip_model(self, clip_model, classnames):
        """The method's nn.Module around a loaded CLIP (default: `model_class` with its defaults); its
        forward(images [B, 3, H, W]) returns a dict with at least `logits` [B, C]. It reads only the config
        (self.cfg, method_cfg, template): `build_model_from_cfg` calls it without a dataset or device."""
        if self.model_class is None:
            raise NotImplementedError(f"{type(self).__name__} sets model_class or writes build_clip_model")
        return self.model_class(clip_model, classnames)

    def trainable_modules(self, model):
        """{name (its checkpoint folder): module} of the modules of `model` that training updates: each
        top-level module with trainable parameters, under its attribute name."""
        return {name: module for name, module in model.named_children()
                if any(param.requires_grad for param in module.parameters())}

    def register_trainable_modules(self):
        """Register each of `trainable_modules` with its own optimiser and scheduler (Dassl's
        register_model) built from `optim_cfg_for(name)`.

        The modules trained with OPTIM come first: the log's `lr` is the first module's.
        """
        modules = self.trainable_modules(self.model)
        trained = [(name, module, self.optim_cfg_for(name)) for name, module in modules.items()]
        for name, module, optim_cfg in sorted(trained, key=lambda item: item[2] is not self.cfg.OPTIM):
            optim = build_optimizer(module, optim_cfg)
            self.register_model(name, module, optim, build_lr_scheduler(optim, optim_cfg))

    def optim_cfg_for(self, module_name):
        """The optimiser and schedule settings of a trained module: OPTIM unless a method says otherwise."""
        return self.cfg.OPTIM

    def load_init_weights(self, path):
        """MODEL.INIT_WEIGHTS: the weights of the trainer's only trained module (CoOp's option)."""
        names = self.get_model_names()
        if len(names) != 1:
            raise UserError(
                f"MODEL.INIT_WEIGHTS ({path}) loads the weights of one module, but {type(self).__name__} trains "
                f"{len(names)} ({', '.join(names) or 'none'}). Load trained prompts with --eval-only --model-dir "
                "(or resume with --resume) and leave MODEL.INIT_WEIGHTS empty."
            )
        load_pretrained_weights(self._models[names[0]], path)

    def compute_loss(self, outputs, labels):
        """(loss, {component name: value to log}) of the model's outputs; default: CE of the logits."""
        loss = F.cross_entropy(outputs["logits"], labels)
        return loss, {"ce_logits": loss.detach()}

    def forward_backward(self, batch):
        """One training step: model under the precision mode, loss in fp32, backward, optimiser steps."""
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            outputs = self.model(images)
        outputs = {key: value.float() if value.is_floating_point() else value for key, value in outputs.items()}
        loss, components = self.compute_loss(outputs, labels)
        self.backward_and_update(loss, components)
        self.step_lr_at_epoch_end()
        summary = {"loss": loss.item(), "acc": compute_accuracy(outputs["logits"], labels)[0].item()}
        summary.update({name: float(torch.as_tensor(value).detach()) for name, value in components.items()})
        return summary

    def autocast(self):
        """The autocast context of the configured precision (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @property
    def grad_scaler(self):
        if "_grad_scaler" not in self.__dict__:
            enabled = self.precision in ("fp16", "amp")
            self._grad_scaler = torch.amp.GradScaler(self.device.type, enabled=enabled)
        return self._grad_scaler

    def log_trainable_parameters(self, model):
        """Print the trainable parameters per top-level module and in total; returns the total."""
        per_module = {}
        for name, param in model.named_parameters():
            if param.requires_grad:
                top = name.split(".")[0]
                per_module[top] = per_module.get(top, 0) + param.numel()
        total = count_num_param(params=[p for p in model.parameters() if p.requires_grad])
        for top, n in per_module.items():
            print(f"  {top}: {n:,}")
        print(f"Trainable parameters: {total:,}")
        return total

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def backward_and_update(self, loss, components):
        """The update step of `compute_loss`'s (loss, components): `model_backward_and_update(loss)`. A method
        whose step needs more than the loss's gradient (ProGrad's projection) overrides this."""
        self.model_backward_and_update(loss)

    def model_backward_and_update(self, loss, names=None):
        """Backward through the GradScaler (identity unless fp16) and step every optimiser."""
        self.model_zero_grad(names)
        self.detect_anomaly(loss)
        self.grad_scaler.scale(loss).backward()
        self.step_optimizers(names)

    def step_optimizers(self, names=None):
        """Step every optimiser through the GradScaler (which skips a step whose gradients overflowed)."""
        scaler = self.grad_scaler
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                scaler.step(self._optims[name])
        scaler.update()

    def model_inference(self, input):
        with self.autocast():
            return self.model(input)["logits"].float()

    def step_lr_at_epoch_end(self):
        """Dassl trainers step their schedulers after the last batch of an epoch."""
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()


def weight_tag(backbone):
    """The open_clip weight tag ("" for none): MODEL.BACKBONE.OPEN_CLIP_PRETRAINED, or PRETRAINED where it is
    a string. A Dassl harness that loads us through dpt_plugin keeps Dassl's own PRETRAINED (a bool:
    ImageNet weights for Dassl's backbones), which is no tag."""
    tag, legacy = backbone.OPEN_CLIP_PRETRAINED, backbone.PRETRAINED if isinstance(backbone.PRETRAINED, str) else ""
    if tag and legacy and tag != legacy:
        raise UserError(
            f"MODEL.BACKBONE.OPEN_CLIP_PRETRAINED ({tag!r}) and MODEL.BACKBONE.PRETRAINED ({legacy!r}) name "
            "different open_clip weights; set only MODEL.BACKBONE.OPEN_CLIP_PRETRAINED."
        )
    return tag or legacy


def load_backbone(cfg):
    """The CLIP of cfg.MODEL.BACKBONE: `open_clip:<model>` through open_clip (PRETRAINED tag or PATH),
    any other name OpenAI's (by name or PATH)."""
    backbone = cfg.MODEL.BACKBONE
    pretrained = weight_tag(backbone)
    if open_clip_backbone.is_open_clip(backbone.NAME):
        return open_clip_backbone.load_open_clip(backbone.NAME, pretrained, backbone.PATH)
    if pretrained:
        raise UserError(
            f"MODEL.BACKBONE.OPEN_CLIP_PRETRAINED ({pretrained!r}) selects an open_clip model's weights; "
            f"MODEL.BACKBONE.NAME {backbone.NAME!r} is OpenAI CLIP. Use open_clip:<model> or leave it empty."
        )
    return load_clip_from_cfg(cfg)


def check_input_size(cfg, clip_model):
    """A UserError unless INPUT.SIZE is the input resolution of the loaded CLIP's image encoder (its
    positional embedding, ViT or ResNet attention pool, fits that size only)."""
    resolution = getattr(clip_model.visual, "input_resolution", None)
    if resolution is not None and tuple(cfg.INPUT.SIZE) != (resolution, resolution):
        raise UserError(
            f"INPUT.SIZE is {tuple(cfg.INPUT.SIZE)}, but the backbone {cfg.MODEL.BACKBONE.NAME} takes "
            f"{resolution}x{resolution} images. Set INPUT.SIZE ({resolution}, {resolution}) (the shipped "
            "configs of each backbone do)."
        )


def with_input_settings(cfg, settings):
    """A copy of cfg whose INPUT has `settings` (SIZE, INTERPOLATION, PIXEL_MEAN, PIXEL_STD); printed."""
    input_cfg = cfg.clone()
    input_cfg.defrost()
    for key, value in settings.items():
        input_cfg.INPUT[key] = value
    input_cfg.freeze()
    described = ", ".join(f"INPUT.{key} {value}" for key, value in settings.items())
    print("Image preprocessing of the backbone (data transforms): " + described)
    return input_cfg


def keep_frozen_modules_in_eval(module):
    """Put back in eval mode every submodule that has parameters, none of them trainable."""
    for child in module.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            child.eval()
        else:
            keep_frozen_modules_in_eval(child)


def is_distributed():
    """True in a multi-process run (torchrun) whose process group is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process():
    return not is_distributed() or dist.get_rank() == 0


def ddp_options():
    """DDP keyword arguments: no buffer sync at every forward; the buffers (class-name embeddings,
    template features) are identical in every process. (torch >= 2.14 names it forward_sync_buffers.)"""
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def registered_methods(registry=None):
    """{name: trainer class} of every method registered in `registry` (default: the active Dassl
    TRAINER_REGISTRY), in registration order: the ClipPromptTrainer subclasses, not Dassl's own trainers
    or a host harness's."""
    registry = registry or dassl_compat.TRAINER_REGISTRY
    classes = {name: registry.get(name) for name in registry.registered_names()}
    return {name: cls for name, cls in classes.items() if isinstance(cls, type) and issubclass(cls, ClipPromptTrainer)}
