"""Load open_clip models (LAION, DataComp, MetaCLIP, ... weights) as backbones of every trainer here.

`MODEL.BACKBONE.NAME open_clip:<model>` names an open_clip architecture (`ViT-B-16`, `ViT-L-14`, or
open_clip's own `local-dir:<folder>` / `hf-hub:<repo>` schemas); `MODEL.BACKBONE.OPEN_CLIP_PRETRAINED` is its
weight tag (`laion2b_s34b_b88k`, `datacomp_xl_s13b_b90k`, `metaclip_400m`, ...) and
`MODEL.BACKBONE.PATH` a local weight file to use instead of the tag's download. open_clip builds the
model and downloads or reads its own cache; the model keeps its modules and weights: the trainers
prompt them in place.

What the trainers need from a model, checked when it is loaded (`check_promptable`): a Vision
Transformer image tower pooled on its class token (no attention pooling, no LayerScale), and a text
transformer with a causal mask, pooled at the EOT token (`argmax`) of open_clip's BPE tokenizer,
projected by a matrix. The loaded model carries its tokenizer as `model.tokenizer`.

`open_clip` is imported on first use (it takes seconds): OpenAI CLIP runs never import it.
"""
import os.path as osp

import torch

from .clip_backbone import MissingWeightsError
from .errors import UserError

PREFIX = "open_clip:"
HF_WEIGHTS_FILE = "open_clip_pytorch_model.bin"  # open_clip's file in a hf-hub repo whose tag names none
SUPPORTED = (
    "open_clip's ViT CLIP architectures with the OpenAI-style text tower, e.g. ViT-B-32, ViT-B-16, ViT-L-14, "
    "ViT-H-14 (weights: openai, laion400m_*, laion2b_*, datacomp_*, commonpool_*, dfn2b, metaclip_*)"
)


def is_open_clip(name):
    """True when MODEL.BACKBONE.NAME names an open_clip model (`open_clip:<model>`)."""
    return name.startswith(PREFIX)


def model_name(name):
    """`open_clip:ViT-B-16` -> `ViT-B-16` (open_clip also accepts `ViT-B/16`)."""
    return name[len(PREFIX):]


def import_open_clip():
    try:
        import open_clip
    except ImportError as err:
        raise UserError(
            "MODEL.BACKBONE.NAME open_clip:<model> needs the open_clip_torch package; "
            "install the project's requirements (pip install -r requirements.txt)."
        ) from err
    return open_clip


def load_open_clip(name, pretrained="", path="", random_weights=False, **model_overrides):
    """An open_clip model in fp32 and eval mode, with `.tokenizer` set, checked by `check_promptable`
    (a UserError naming the supported architectures for one the trainers cannot prompt).

    name: `open_clip:<model>`; pretrained: a weight tag; path: a weight file, used instead of the tag's
    download (the tag, when also given, still sets the preprocessing of those weights); random_weights:
    build without weights (tests, benchmarks); model_overrides: open_clip's config overrides
    (`embed_dim`, `vision_cfg`, `text_cfg`), e.g. to shrink a model.
    """
    open_clip = import_open_clip()
    architecture = model_name(name)
    weights, preprocess = resolve_weights(open_clip, architecture, pretrained, path, random_weights)
    if weights and not architecture.startswith(("local-dir:", "hf-hub:")):
        check_promptable(build(open_clip, architecture, name, device="meta"), name)  # before any download
    model = build(open_clip, architecture, name, pretrained, weights, preprocess, **model_overrides)
    check_promptable(model, name)
    return model.float().eval()


def build(open_clip, architecture, name="", tag="", weights=None, preprocess=None, device="cpu", **model_overrides):
    """open_clip.create_model with `.tokenizer` set (the exception instead when it cannot be built);
    on the meta device: the architecture alone, no memory and no download."""
    try:
        with torch.device(device):
            model = open_clip.create_model(architecture, pretrained=weights, force_preprocess_cfg=preprocess,
                                           device=device, **model_overrides)
    except RuntimeError as err:
        if "Failed to download" in str(err):
            raise MissingWeightsError(missing_weights_message(open_clip, architecture, tag, err)) from err
        raise UserError(f"MODEL.BACKBONE.NAME {name!r}: open_clip could not build it ({err}). "
                        f"Supported: {SUPPORTED}.") from err
    try:
        model.tokenizer = open_clip.get_tokenizer(architecture)
    except (ImportError, OSError, ValueError) as err:  # e.g. a Hugging Face tokenizer without `transformers`
        model.tokenizer = err
    return model


def resolve_weights(open_clip, architecture, pretrained, path, random_weights):
    """(`pretrained` argument of open_clip.create_model: a tag, a file or None for random weights,
    the preprocessing to force: the tag's when the weights come from a file)."""
    tag_cfg = open_clip.get_pretrained_cfg(architecture.replace("/", "-"), pretrained) if pretrained else {}
    if pretrained and not tag_cfg and not architecture.startswith(("local-dir:", "hf-hub:")):
        tags = open_clip.list_pretrained_tags_by_model(architecture.replace("/", "-"))
        raise UserError(
            f"MODEL.BACKBONE.OPEN_CLIP_PRETRAINED {pretrained!r} is not a weight tag of open_clip's {architecture}; "
            f"its tags: {', '.join(tags) or '(none)'}."
        )
    check_activation(open_clip, architecture, pretrained, tag_cfg)
    if path:
        path = osp.expanduser(path)
        if not osp.isfile(path):
            raise MissingWeightsError(
                f"MODEL.BACKBONE.PATH points to {path!r}, which is not a file. Set it to the open_clip weight file "
                f"of {architecture} (e.g. {HF_WEIGHTS_FILE} or open_clip_model.safetensors from its Hugging Face repo)."
            )
        preprocess = {key: tag_cfg[key] for key in ("mean", "std", "interpolation", "resize_mode") if key in tag_cfg}
        return path, preprocess or None
    if pretrained or random_weights or architecture.startswith(("local-dir:", "hf-hub:")):
        return pretrained or None, None
    tags = open_clip.list_pretrained_tags_by_model(architecture.replace("/", "-"))
    raise UserError(
        f"MODEL.BACKBONE.NAME open_clip:{architecture} needs weights: set MODEL.BACKBONE.OPEN_CLIP_PRETRAINED to "
        f"one of {', '.join(tags) or '(none known to open_clip)'}, or MODEL.BACKBONE.PATH to a weight file."
    )


def check_activation(open_clip, architecture, tag, tag_cfg):
    """Refuse weights trained with another activation than the architecture's (open_clip only warns):
    OpenAI's, MetaCLIP's and DFN's ViT weights need QuickGELU, i.e. the `-quickgelu` model names."""
    if not tag_cfg:
        return
    model_cfg = open_clip.get_model_config(architecture.replace("/", "-")) or {}
    tag_quick_gelu, model_quick_gelu = tag_cfg.get("quick_gelu", False), model_cfg.get("quick_gelu", False)
    if tag_quick_gelu != model_quick_gelu:
        base = architecture.replace("/", "-").removesuffix("-quickgelu")
        fitting = [name for name in (base, f"{base}-quickgelu") if name != architecture.replace("/", "-")
                   and tag in open_clip.list_pretrained_tags_by_model(name)
                   and open_clip.get_model_config(name).get("quick_gelu", False) == tag_quick_gelu]
        activation = "QuickGELU" if tag_quick_gelu else "GELU"
        raise UserError(
            f"The open_clip weights {tag!r} were trained with {activation}, but open_clip:{architecture} uses "
            f"{'GELU' if tag_quick_gelu else 'QuickGELU'}: set MODEL.BACKBONE.NAME to "
            f"{'open_clip:' + fitting[0] if fitting else 'the architecture variant with ' + activation}."
        )


def missing_weights_message(open_clip, architecture, tag, err):
    """The offline error: which file is missing, where it comes from, and where to put it."""
    source = open_clip.get_pretrained_cfg(architecture.replace("/", "-"), tag)
    hub = source.get("hf_hub", "")
    if hub:
        repo, filename = osp.split(hub)
        filename = filename or HF_WEIGHTS_FILE
        url = f"https://huggingface.co/{repo}/resolve/main/{filename}"
        cache = "the Hugging Face cache (HF_HOME, default ~/.cache/huggingface)"
    else:
        url = source.get("url", "")
        filename = osp.basename(url)
        cache = "~/.cache/clip"
    return (
        f"open_clip weights {architecture} / {tag} are not available: expected the file {filename} in {cache} "
        f"and downloading it from {url} failed ({err}). Download that URL on a machine with internet, copy the "
        "file here and set MODEL.BACKBONE.PATH to it (keep MODEL.BACKBONE.OPEN_CLIP_PRETRAINED: it still sets the "
        "preprocessing of those weights), or copy that machine's Hugging Face cache."
    )


def check_promptable(model, name):
    """Refuse, with the reason and the supported architectures, a model the trainers cannot prompt."""
    open_clip = import_open_clip()
    visual = getattr(model, "visual", None)
    reasons = []
    if not hasattr(model, "transformer") or not hasattr(model, "token_embedding"):
        reasons.append("its text tower is not CLIP's plain text transformer (a custom or Hugging Face text tower)")
    else:
        if getattr(model, "attn_mask", None) is None:
            reasons.append("its text transformer has no causal mask")
        if getattr(model, "text_pool_type", "argmax") != "argmax":
            reasons.append(f"its text features are pooled by {model.text_pool_type!r}, not at the EOT token")
        if not isinstance(model.text_projection, torch.nn.Parameter):
            reasons.append("its text projection is not a matrix")
        tokenizer = model.tokenizer
        if isinstance(tokenizer, Exception):
            reasons.append(f"its tokenizer is not open_clip's BPE tokenizer and could not be built ({tokenizer})")
        elif not isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
            reasons.append(f"its tokenizer is {type(tokenizer).__name__}, not open_clip's BPE tokenizer")
        elif tokenizer.eot_token_id != max(tokenizer.encoder.values()):
            reasons.append("its tokenizer's EOT token is not the largest id (the EOT-argmax pooling needs it)")
        reasons += block_problems(model.transformer, "text")
    if not isinstance(visual, open_clip.transformer.VisionTransformer):
        reasons.append(f"its image tower is {type(visual).__name__}, not a Vision Transformer")
    else:
        if visual.attn_pool is not None or visual.pool_type != "tok":
            reasons.append("its image features are not pooled on the class token")
        reasons += block_problems(visual.transformer, "image")
    if reasons:
        raise UserError(
            f"MODEL.BACKBONE.NAME {name!r} cannot be prompted: {'; '.join(reasons)}. Supported: {SUPPORTED}."
        )


def block_problems(transformer, tower):
    """Why the blocks of a tower differ from CLIP's residual attention block, if they do."""
    open_clip = import_open_clip()
    block = transformer.resblocks[0]
    if not isinstance(block, open_clip.transformer.ResidualAttentionBlock):
        return [f"its {tower} blocks are {type(block).__name__} (custom attention)"]
    if not isinstance(block.ls_1, torch.nn.Identity):
        return [f"its {tower} blocks use LayerScale"]
    return []


def preprocess_settings(model):
    """The model's image preprocessing as Dassl INPUT keys: {SIZE, INTERPOLATION, PIXEL_MEAN, PIXEL_STD}.

    Dassl's test transform resizes the short side and crops the centre: open_clip's `shortest` mode.
    """
    preprocess = model.visual.preprocess_cfg
    if preprocess.get("resize_mode", "shortest") != "shortest":
        raise UserError(
            f"The open_clip model resizes images with {preprocess['resize_mode']!r}; the data transforms here "
            "resize the short side and crop the centre (open_clip's 'shortest'), so it is not supported."
        )
    size = preprocess["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    return {
        "SIZE": size,
        "INTERPOLATION": preprocess["interpolation"],
        "PIXEL_MEAN": [float(v) for v in preprocess["mean"]],
        "PIXEL_STD": [float(v) for v in preprocess["std"]],
    }


def tiny_model_cfg(image_size=32, patch_size=8, vision_width=64, vision_layers=2, text_width=64, text_layers=2,
                   embed_dim=32):
    """A small open_clip ViT CLIP config (heads of width 32) for tests: open_clip builds it like any other."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": vision_layers, "width": vision_width,
                       "patch_size": patch_size, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": text_width, "heads": text_width // 32,
                     "layers": text_layers},
    }


def random_model(model_cfg, seed=0):
    """open_clip's CLIP of `model_cfg` (e.g. `tiny_model_cfg()`), randomly initialised with `seed`."""
    open_clip = import_open_clip()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return open_clip.CLIP(**model_cfg)
    finally:
        torch.random.set_rng_state(generator_state)


def save_model_folder(folder, model, model_cfg, preprocess_cfg=None):
    """Write an open_clip model as a `local-dir:` folder (open_clip_config.json with its config and
    preprocessing, open_clip_model.safetensors); returns the backbone name `open_clip:local-dir:<folder>`."""
    import json
    import os

    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    weights = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(weights, osp.join(folder, "open_clip_model.safetensors"))
    with open(osp.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": dict(preprocess_cfg or {})}, f, indent=1)
    return f"{PREFIX}local-dir:{folder}"
