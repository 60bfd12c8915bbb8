"""Load OpenAI CLIP by name or file, offline-friendly, and build random CLIPs: small ones for tests,
OpenAI's architectures (OPENAI_ARCHITECTURES) for benchmarks without the weight files.

Every model is built by `build_clip(state_dict)`: `clip.model.build_model`'s architecture and values
(fp32, eval mode) without its randomly initialised copy (built on the meta device, weights assigned).
Weights are looked up in this order: MODEL.BACKBONE.PATH if set, the project's shipped toy
weights for "ToyCLIP-ViT" (`dpt_models/weights/`), then `~/.cache/clip/<file>` (downloaded there when
the network allows).
"""
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import os.path as osp
import sys
import types
import warnings
import zipfile

import packaging.version
import torch

from .errors import UserError

OPENAI_CLIP_DISTRIBUTION = "clip-anytorch"
PRIVATE_CLIP_NAME = "_dpt_openai_clip"


@contextlib.contextmanager
def packaging_as_pkg_resources():
    """While clip-anytorch's `clip/clip.py` runs: its one use of setuptools' `pkg_resources` (`from
    pkg_resources import packaging`, to compare torch versions) is answered by the `packaging`
    distribution itself, so OpenAI CLIP loads with any setuptools (>= 81 has no pkg_resources) and
    setuptools' slow, deprecated `pkg_resources` is never imported. A `pkg_resources` already loaded is
    left alone; the stand-in is removed afterwards."""
    if sys.modules.get("pkg_resources") is not None:
        yield
        return
    stand_in = types.ModuleType("pkg_resources")
    stand_in.packaging = packaging
    blocked = "pkg_resources" in sys.modules  # None there: an import of it is refused
    sys.modules["pkg_resources"] = stand_in
    try:
        yield
    finally:
        if blocked:
            sys.modules["pkg_resources"] = None
        else:
            del sys.modules["pkg_resources"]


def import_openai_clip():
    """OpenAI's `clip` package from the clip-anytorch distribution, even where a host harness (CoOp,
    MaPLe, ...) vendors its own `clip` package earlier on sys.path.

    When `import clip` would give clip-anytorch's files, that module is used. Otherwise clip-anytorch's
    package is loaded from its installed location under the private name `_dpt_openai_clip`, so the
    host's `clip` stays untouched and ours is the one PyPI installed.
    """
    try:
        distribution = importlib.metadata.distribution(OPENAI_CLIP_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # another distribution of OpenAI's `clip` package
        with packaging_as_pkg_resources():
            return importlib.import_module("clip")
    init_file = osp.realpath(distribution.locate_file("clip/__init__.py"))
    loaded = sys.modules.get("clip")
    spec = importlib.util.find_spec("clip") if loaded is None else None
    found = getattr(loaded, "__file__", None) if loaded is not None else spec and spec.origin
    if found and osp.realpath(found) == init_file:
        with packaging_as_pkg_resources():
            return importlib.import_module("clip")
    if PRIVATE_CLIP_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PRIVATE_CLIP_NAME, init_file, submodule_search_locations=[osp.dirname(init_file)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PRIVATE_CLIP_NAME] = module
        with packaging_as_pkg_resources():
            spec.loader.exec_module(module)
    return sys.modules[PRIVATE_CLIP_NAME]


clip = import_openai_clip()
CLIP, build_model = clip.model.CLIP, clip.model.build_model

# Package data: the toy CLIP ships inside this package (in the wheel too), found through its own path.
SHIPPED_WEIGHTS = {"ToyCLIP-ViT": osp.join(osp.dirname(osp.abspath(__file__)), "weights", "toyclip_vit.pt")}
DEFAULT_DOWNLOAD_ROOT = osp.expanduser("~/.cache/clip")


class MissingWeightsError(UserError, FileNotFoundError):
    """CLIP weights are not on disk and could not be downloaded."""


def available_backbones():
    return list(clip.clip._MODELS) + list(SHIPPED_WEIGHTS)


def resolve_weights_file(name, path="", download_root=DEFAULT_DOWNLOAD_ROOT):
    """The local file holding CLIP `name`'s weights, downloading it if needed and possible."""
    if path:
        path = osp.expanduser(path)
        if not osp.isfile(path):
            raise MissingWeightsError(
                f"MODEL.BACKBONE.PATH points to {path!r}, which is not a file. "
                "Set it to a CLIP checkpoint (an OpenAI .pt file or a state dict saved with torch.save)."
            )
        return path
    if name in SHIPPED_WEIGHTS:
        shipped = SHIPPED_WEIGHTS[name]
        if not osp.isfile(shipped):
            raise MissingWeightsError(
                f"The toy CLIP weights {shipped} are missing. Regenerate them with "
                "`python -m dpt_tools.pretrain_toy_clip` or restore the file from the repository."
            )
        return shipped
    if name not in clip.clip._MODELS:
        raise UserError(
            f"Unknown CLIP backbone {name!r} (MODEL.BACKBONE.NAME, --backbone). Available: "
            f"{', '.join(available_backbones())}; or set MODEL.BACKBONE.PATH to a checkpoint file."
        )
    url = clip.clip._MODELS[name]
    target = osp.join(download_root, osp.basename(url))
    differs = osp.isfile(target)  # _download returns a file whose checksum is OpenAI's, else downloads
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # its "checksum does not match": said below if it matters
            return clip.clip._download(url, download_root)
    except Exception as err:  # urllib, ssl, checksum or disk errors: all mean "no usable file"
        failure = f"downloading it from {url} failed ({type(err).__name__}: {err})"
        if differs:
            raise MissingWeightsError(
                f"CLIP weights for {name!r}: {target} exists but is not OpenAI's file (its SHA256 checksum is not "
                f"the one in the URL: converted, fine-tuned or incomplete), and {failure}. To use that file "
                f"anyway, set MODEL.BACKBONE.PATH {target}; or replace it with the download of that URL."
            ) from err
        raise MissingWeightsError(
            f"CLIP weights for {name!r} are not available: expected the file {target} and {failure}. "
            f"Download that URL on a machine with internet and copy the file to {target}, "
            "or set MODEL.BACKBONE.PATH to where the file is."
        ) from err


def is_torchscript_archive(path):
    """OpenAI's released .pt files are TorchScript archives (a zip with a `code/` folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def read_state_dict(path):
    """A CLIP state dict from an OpenAI TorchScript archive or a plain `torch.save` file."""
    if is_torchscript_archive(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated, still the only reader
            return torch.jit.load(path, map_location="cpu").state_dict()
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def build_clip(state_dict):
    """`build_model(state_dict).float().eval()` with the peak memory of the weights alone.

    `build_model` initialises a random CLIP, casts it to fp16 and copies the weights in (twice the
    weights' memory). Here the model is built on the meta device (no memory), the weights are
    assigned, and the ones OpenAI's CLIP keeps in fp16 are rounded to fp16 first, so the values are
    build_model's. Entries are consumed from `state_dict` (each one freed as soon as it is converted).
    """
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # build_model's copy into meta tensors is a no-op
        model = build_model(dict(state_dict))  # architecture read from the state dict, no memory
    stored_dtypes = {name: tensor.dtype for name, tensor in model.state_dict().items()}  # fp16 as OpenAI's
    weights = {}
    for name, dtype in stored_dtypes.items():
        tensor = state_dict.pop(name)
        weights[name] = tensor.to(dtype).float() if dtype.is_floating_point else tensor
    state_dict.clear()  # input_resolution, context_length, vocab_size of OpenAI's files
    model.load_state_dict(weights, assign=True)
    for block in model.transformer.resblocks:  # the text causal mask is a plain attribute, not a buffer
        block.attn_mask = model.build_attention_mask()
    return model.eval()


def load_clip(name, path="", download_root=DEFAULT_DOWNLOAD_ROOT):
    """Build CLIP `name` (or the checkpoint at `path`) in fp32 and eval mode."""
    return build_clip(read_state_dict(resolve_weights_file(name, path, download_root)))


def load_clip_from_cfg(cfg):
    return load_clip(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PATH)


# OpenAI's released architectures, as `tiny_clip_state_dict` arguments: the shapes of their weight files
# (context length 77 and vocabulary 49408 are the defaults; heads = width // 64 as in `build_model`).
OPENAI_ARCHITECTURES = {
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 transformer_width=512, transformer_layers=12),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     transformer_width=512, transformer_layers=12),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     transformer_width=512, transformer_layers=12),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024, vision_patch_size=14,
                     transformer_width=768, transformer_layers=12),
}


def tiny_clip_state_dict(
    embed_dim=32,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=8,
    context_length=77,
    vocab_size=49408,
    transformer_width=128,
    transformer_layers=2,
    seed=0,
):
    """A randomly initialised CLIP state dict of any size (ViT, or ModifiedResNet for a tuple of layers).

    Head counts follow `build_model`'s rule (width // 64), so widths must be multiples of 64.
    The values are rounded to fp16 so that `build_model` (which casts to fp16) loses nothing.
    """
    if vision_width % 64 or transformer_width % 64:
        raise ValueError("vision_width and transformer_width must be multiples of 64 (CLIP uses width // 64 heads)")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = CLIP(
            embed_dim,
            image_resolution,
            vision_layers,
            vision_width,
            None if isinstance(vision_layers, (tuple, list)) else vision_patch_size,
            context_length,
            vocab_size,
            transformer_width,
            transformer_width // 64,
            transformer_layers,
        )
    finally:
        torch.random.set_rng_state(generator_state)
    return {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def tiny_clip(**kwargs):
    """A small random CLIP built through the same `build_clip` path as real weights, fp32, eval."""
    return build_clip(tiny_clip_state_dict(**kwargs))


def save_tiny_clip(path, **kwargs):
    """Write a small random CLIP state dict (fp16) to `path`; returns the path."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in tiny_clip_state_dict(**kwargs).items()}, path)
    return path
