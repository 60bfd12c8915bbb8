"""What a checkpoint records about the weights it holds, and the check that loads them only where they fit.

A trainer's checkpoints record (in their `meta`, beside the trainer and class names) the backbone they
were trained on, by name and by a fingerprint of its weights, and the options that shape the learned
weights or give them their meaning (`ClipPromptTrainer.weight_options`: context length, class-specific
context, class-token position, visual prompt tokens, ...). Loading them under another backbone or with
such an option changed is a UserError unless `--allow-mismatch`. A checkpoint without the record
(written by CoOp, Dassl or an older version) is loaded unchecked. `train.py --eval-only` also compares
these options with the `config.yaml` that the training run recorded in `--model-dir`.
"""
import hashlib

from dpt_models import open_clip_backbone
from dpt_models.clip_backbone import resolve_weights_file
from dpt_models.errors import UserError
from dpt_runs.output_folder import CONFIG_FILE, flat_config, recorded_config


def file_digest(path, chunk=1 << 20):
    """SHA-1 of a file's content (hex, 12 characters)."""
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:12]


def backbone_weights_id(backbone, pretrained):
    """What identifies the weights of cfg.MODEL.BACKBONE: the digest of its weights file, or, for an
    open_clip model without a file, its name and weight tag (a published tag names fixed weights)."""
    if backbone.PATH:
        return file_digest(backbone.PATH)
    if open_clip_backbone.is_open_clip(backbone.NAME):
        return f"{backbone.NAME} {pretrained}"
    return file_digest(resolve_weights_file(backbone.NAME))


def describe_weights(backbone_name, weights_id, options):
    """The record a checkpoint holds: plain data (torch.load(weights_only=True) reads it)."""
    return {"backbone": backbone_name, "backbone_weights": weights_id, "options": dict(options)}


def differences(recorded, current):
    """[(what, recorded value, current value)] where the record of a checkpoint and this run's differ;
    options absent from either side (an older record, another trainer's options) are not compared."""
    found = [(key, recorded[key], current[key]) for key in ("backbone", "backbone_weights")
             if key in recorded and recorded[key] != current[key]]
    theirs, ours = recorded.get("options", {}), current["options"]
    found += [(key, theirs[key], ours[key]) for key in sorted(ours) if key in theirs and theirs[key] != ours[key]]
    return found


def mismatch_error(source, found):
    """The UserError for weights from `source` that do not fit this run (`found`: see differences)."""
    listed = "; ".join(f"{what}: {old!r} there, {new!r} in this run" for what, old, new in found)
    return UserError(
        f"{source} holds weights trained under other settings than this run's ({listed}). Weights learned on "
        "another CLIP, or with another prompt shape or class-token position, do not mean the same here, and "
        "their evaluation would be reported as this configuration's. Use the options (and backbone) of the "
        "training run, or pass --allow-mismatch to load them anyway."
    )


def check_checkpoint_record(model_path, meta, current):
    """A UserError when the record in checkpoint `meta` differs from `current`; no record: no check."""
    recorded = (meta or {}).get("weights")
    if recorded:
        found = differences(recorded, current)
        if found:
            raise mismatch_error(f'"{model_path}"', found)


def check_model_dir_config(cfg, model_dir, option_keys):
    """--eval-only: a UserError when the config recorded in `model_dir` has another backbone or other
    values of `option_keys` than `cfg` (as the resume check compares the recorded config)."""
    recorded = recorded_config(model_dir)
    if recorded is None:
        return
    requested = flat_config(cfg)
    keys = ["MODEL.BACKBONE.NAME", *option_keys]
    found = [(key, recorded[key], requested[key]) for key in keys
             if key in recorded and key in requested and recorded[key] != requested[key]]
    if found:
        raise mismatch_error(f'--model-dir "{model_dir}" (its {CONFIG_FILE})', found)
