"""The shared-prefix text encoding (dpt_models/text.py): the `[SOS] ctx` prefix every class shares is
encoded once, each class's own positions attend to it; same features and gradients as encoding the
full prompts, far fewer positions; full prompts for class-specific context or another class position."""
import pytest
import torch

from dpt_models.clip_backbone import tiny_clip
from dpt_models.cocoop import ConditionalPromptLearner
from dpt_models.text import PromptLearner, TextEncoder

CLASSNAMES = ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "sea lion"]


def features_and_grads(encoder, learner, shared_prefix, encode):
    encoder.shared_prefix = shared_prefix
    learner.zero_grad()
    features = encode()
    (features * torch.linspace(-1, 1, features.shape[-1])).sum().backward()  # a loss that weighs every output
    return features.detach(), {name: p.grad.clone() for name, p in learner.named_parameters()}


def assert_same(a, b):
    """Equal within fp32 rounding: 1e-5 of each tensor's largest magnitude (sums of many products)."""
    features_a, grads_a = a
    features_b, grads_b = b
    assert grads_a.keys() == grads_b.keys()
    for name, x, y in [("features", features_a, features_b), *((n, grads_a[n], grads_b[n]) for n in grads_a)]:
        scale = y.abs().max().item()
        assert scale > 0, name
        torch.testing.assert_close(x, y, atol=1e-5 * scale, rtol=1e-5, msg=name)


@pytest.mark.parametrize("ctx_init", ["", "a photo of a"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_shared_prefix_equals_full_prompts(ctx_init, checkpointing):
    clip_model = tiny_clip(seed=2)
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=8, ctx_init=ctx_init)
    encoder = TextEncoder(clip_model, gradient_checkpointing=checkpointing)
    prefix_path = features_and_grads(encoder, learner, True, lambda: encoder.encode_learned_prompts(learner))
    full_path = features_and_grads(encoder, learner, False, lambda: encoder.encode_learned_prompts(learner))
    assert_same(prefix_path, full_path)
    # and the full path is CoOp's: the assembled prompts through the text encoder
    torch.testing.assert_close(full_path[0], encoder(learner(), learner.eot_indices).detach())


def test_shared_prefix_per_image_equals_full_prompts_for_cocoop():
    # A fixed draw of the context, meta-net and images: the tiny meta-net has 2 ReLU units, and with
    # an unlucky random draw both are off for every image, so its gradients are 0 and nothing is compared.
    torch.manual_seed(0)
    clip_model = tiny_clip(seed=3)
    learner = ConditionalPromptLearner(CLASSNAMES, clip_model, n_ctx=4)
    encoder = TextEncoder(clip_model)
    image_features = torch.nn.functional.normalize(torch.randn(3, clip_model.visual.output_dim), dim=-1)

    def encode():
        return encoder.encode_contexts(learner, learner.contexts(image_features))  # [B, C, E]

    prefix_path = features_and_grads(encoder, learner, True, encode)
    assert prefix_path[0].shape == (3, len(CLASSNAMES), clip_model.text_projection.shape[1])
    assert_same(prefix_path, features_and_grads(encoder, learner, False, encode))
    with torch.no_grad():
        prompts = learner(image_features)  # [B, C, L, W]: CoCoOp's own assembly
        looped = torch.stack([encoder(p, learner.eot_indices) for p in prompts])
    torch.testing.assert_close(prefix_path[0], looped, atol=1e-5, rtol=1e-5)


def positions_per_block(encoder, encode, block=0):
    """Positions that went through one block's MLP during `encode()`."""
    counted = []
    handle = encoder.transformer.resblocks[block].mlp.register_forward_hook(
        lambda module, args, output: counted.append(args[0].shape[:-1].numel()))
    with torch.no_grad():
        encode()
    handle.remove()
    return sum(counted)


def test_shared_prefix_encodes_the_prefix_once_and_each_class_up_to_its_eot():
    clip_model = tiny_clip(seed=2)
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=16)
    encoder = TextEncoder(clip_model)
    length = learner.token_prefix.shape[1] + 16 + learner.token_suffix.shape[1]  # up to the longest EOT
    own_lengths = (learner.eot_indices - 17 + 1).tolist()  # each class's name . [EOS]
    assert len(set(own_lengths)) > 1  # names of several lengths: none is padded to the longest

    def encode():
        return encoder.encode_learned_prompts(learner)

    assert positions_per_block(encoder, encode) == 17 + sum(own_lengths)
    assert positions_per_block(encoder, encode, block=-1) == len(CLASSNAMES)  # the last block: the EOT only
    encoder.shared_prefix = False  # full prompts, each up to its own EOT
    assert positions_per_block(encoder, encode) == sum(17 + own for own in own_lengths)
    assert length == 17 + max(own_lengths)


@pytest.mark.parametrize("options", [dict(csc=True), dict(class_token_position="middle"),
                                     dict(class_token_position="front")])
def test_full_prompts_when_the_prefix_is_not_shared(options, monkeypatch):
    clip_model = tiny_clip(seed=2)
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=4, **options)
    encoder = TextEncoder(clip_model)
    monkeypatch.setattr(encoder, "encode_with_shared_prefix", lambda *args: pytest.fail("prefix path taken"))
    # each prompt only up to its own EOT (in groups of one length) == all padded to the longest
    by_length = features_and_grads(encoder, learner, True, lambda: encoder.encode_learned_prompts(learner))
    padded = features_and_grads(encoder, learner, True, lambda: encoder(learner(), learner.eot_indices))
    assert_same(by_length, padded)


def test_shared_prefix_option_reaches_every_text_encoder(tmp_path, data_root, tiny_clip_file):
    from conftest import folder_run_args

    from dassl_compat import build_trainer
    from dpt_tools import train

    for value in (True, False):
        args = folder_run_args(data_root, tiny_clip_file, tmp_path / str(value), trainer="CoCoOp", epochs=1,
                               extra=("TRAINER.COCOOP.PREC", "fp32", "MODEL.TEXT_SHARED_PREFIX", str(value)))
        trainer = build_trainer(train.setup_cfg(train.build_parser().parse_args(args)))
        assert trainer.model.text_encoder.shared_prefix is value


@pytest.mark.parametrize("options", [dict(), dict(csc=True)])
def test_classes_are_grouped_by_eot_once_not_at_every_encoding(options, monkeypatch):
    """The learner groups its classes by EOT position when it is built; encoding its prompts (every
    training step) does not group them again (no per-step device sync)."""
    import dpt_models.text

    clip_model = tiny_clip(seed=2)
    learner = PromptLearner(CLASSNAMES, clip_model, n_ctx=4, **options)
    encoder = TextEncoder(clip_model)
    expected = encoder.encode_learned_prompts(learner).detach()
    monkeypatch.setattr(dpt_models.text, "groups_by_eot", lambda *args: pytest.fail("grouped again"))
    torch.testing.assert_close(encoder.encode_learned_prompts(learner).detach(), expected, rtol=0, atol=0)
