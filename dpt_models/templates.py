"""Hand-written zero-shot prompt templates, one per dataset (CoOp's) and the ImageNet ensemble, and
the fixed text features of a template set."""
import torch
import torch.nn.functional as F

from .text import TextEncoder, check_prompt_lengths

DEFAULT_TEMPLATE = "a photo of a {}."

CUSTOM_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
    "ToyFog": "a photo of a {}.",
    "ToyDusk": "a photo of a {}.",
}

# The seven ImageNet templates CoOp's ZeroshotCLIP2 averages (a selection from CLIP's 80).
IMAGENET_TEMPLATES_SELECT = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

# PromptSRC's textual diversity: 60 of CLIP's 80 ImageNet templates, in the order of its code; its
# frozen text features average them, for every dataset.
PROMPTSRC_TEMPLATES = (
    "a photo of a {}.", "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
    "a photo of the hard to see {}.", "a low resolution photo of the {}.", "a rendering of a {}.",
    "graffiti of a {}.", "a bad photo of the {}.", "a cropped photo of the {}.", "a tattoo of a {}.",
    "the embroidered {}.", "a photo of a hard to see {}.", "a bright photo of a {}.",
    "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.", "a drawing of a {}.",
    "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.", "a close-up photo of a {}.",
    "a black and white photo of the {}.", "a painting of the {}.", "a painting of a {}.",
    "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
    "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.", "a photo of the {}.",
    "a good photo of the {}.", "a rendering of the {}.", "a {} in a video game.", "a photo of one {}.",
    "a doodle of a {}.", "a close-up photo of the {}.", "the origami {}.", "the {} in a video game.",
    "a sketch of a {}.", "a doodle of the {}.", "a origami {}.", "a low resolution photo of a {}.",
    "the toy {}.", "a rendition of the {}.", "a photo of the clean {}.", "a photo of a large {}.",
    "a rendition of a {}.", "a photo of a nice {}.", "a photo of a weird {}.", "a blurry photo of a {}.",
    "a cartoon {}.", "art of a {}.", "a sketch of the {}.", "a embroidered {}.", "a pixelated photo of a {}.",
    "itap of the {}.",
)


def template_for(dataset_name):
    """The single hand-written template of a dataset ("a photo of a {}." when it has none)."""
    return CUSTOM_TEMPLATES.get(dataset_name, DEFAULT_TEMPLATE)


def ensemble_templates(dataset_name):
    """ZeroshotCLIP2's templates: the ImageNet selection plus the dataset's own (except ImageNet)."""
    templates = list(IMAGENET_TEMPLATES_SELECT)
    if dataset_name != "ImageNet":
        templates.append(template_for(dataset_name))
    return templates


def class_prompts(template, classnames):
    """The template filled with each class name, underscores replaced by spaces."""
    return [template.format(name.replace("_", " ")) for name in classnames]


def template_text_features(clip_model, classnames, templates, normalize_each=True):
    """Normalised text features [C, E] of the templates filled with each class name: per template
    normalised (unless normalize_each is False: PromptSRC averages the raw features), averaged over
    the templates and normalised again (frozen CLIP, no gradient)."""
    encoder = TextEncoder(clip_model)
    for template in templates:
        check_prompt_lengths(class_prompts(template, classnames), classnames, clip_model)
    features = torch.stack([encoder.encode_texts(class_prompts(template, classnames), normalize=normalize_each)
                            for template in templates])
    return F.normalize(features.mean(dim=0), dim=-1)  # [C, E]
