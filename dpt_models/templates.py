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


def template_text_features(clip_model, classnames, templates):
    """Normalised text features [C, E] of the templates filled with each class name: per template
    normalised, averaged over the templates and normalised again (frozen CLIP, no gradient)."""
    encoder = TextEncoder(clip_model)
    for template in templates:
        check_prompt_lengths(class_prompts(template, classnames), classnames, clip_model)
    features = torch.stack([encoder.encode_texts(class_prompts(template, classnames)) for template in templates])
    return F.normalize(features.mean(dim=0), dim=-1)  # [C, E]
