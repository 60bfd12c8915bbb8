"""dpt_models/visual.py: the prompted ViT forward."""
import pytest
import torch
from reference import reference_clip

from dpt_models.visual import PromptedViT, run_block_with_prompts


def test_prompted_vit_without_prompts_is_clip_encode_image():
    """Equal within fp32 rounding: the last block computes only the CLS token's output."""
    clip_model = reference_clip()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            PromptedViT(clip_model.visual)(images), clip_model.encode_image(images), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("prompt_shape", [None, "shared", "per_sample"])
@pytest.mark.parametrize("cls_only", [False, True])
def test_prompt_tokens_enter_the_block_only_as_keys_and_values(prompt_shape, cls_only):
    """The block on [x; prompts] with the prompts' outputs dropped (and all but CLS for cls_only) equals
    running CLIP's own block on all tokens and slicing: outputs and gradients to x and the prompts."""
    block = reference_clip().visual.transformer.resblocks[1]
    n_tokens, batch, width = 17, 3, block.attn.embed_dim
    x = torch.randn(n_tokens, batch, width, requires_grad=True)
    prompts = {None: None, "shared": torch.randn(4, width), "per_sample": torch.randn(4, batch, width)}[prompt_shape]
    if prompts is not None:
        prompts.requires_grad_(True)
    kept = 1 if cls_only else n_tokens
    upstream = torch.randn(kept, batch, width)
    inputs = [x] if prompts is None else [x, prompts]

    def outputs_and_grads(run):
        output = run()
        return (output.detach(), *torch.autograd.grad(output, inputs, upstream))

    def full_block_then_slice():
        if prompts is None:
            return block(x)[:kept]
        per_sample = prompts if prompts.dim() == 3 else prompts.unsqueeze(1).expand(-1, batch, -1)
        return block(torch.cat([x, per_sample]))[:kept]

    got = outputs_and_grads(lambda: run_block_with_prompts(block, x, prompts, cls_only=cls_only))
    expected = outputs_and_grads(full_block_then_slice)
    assert got[0].shape == (kept, batch, width)
    for got_tensor, expected_tensor in zip(got, expected):
        torch.testing.assert_close(got_tensor, expected_tensor, atol=1e-5, rtol=1e-5)


def test_deep_prompts_change_the_features_and_leave_clip_untouched():
    clip_model = reference_clip()
    before = {k: v.clone() for k, v in clip_model.state_dict().items()}
    encoder = PromptedViT(clip_model.visual)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = encoder(images)
        prompted = encoder(images, torch.randn(2, 5, encoder.width))
    assert plain.shape == prompted.shape and not torch.allclose(plain, prompted)
    assert all(torch.equal(before[k], v) for k, v in clip_model.state_dict().items())
