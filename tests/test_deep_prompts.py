"""Deep prompts in both towers (dpt_models/deep_prompts.py, MaPLe / IVLP / PromptSRC): the fast text path
(shared prefix, encoded to each class's EOT) equals full prompts with deep text prompts too; the authors'
context rule; the inputs their code mishandles silently are clear errors here."""
import pytest
import torch
from reference import reference_clip
from trainer_runs import build

from dassl_compat.errors import UserError
from dpt_models.ivlp import IVLPCLIP
from dpt_models.maple import MaPLeCLIP

CLASSNAMES = ["dog", "sea lion", "Annual Crop Land"]


def test_shared_prefix_encoding_equals_full_prompts_with_deep_text_prompts():
    torch.manual_seed(0)
    model = IVLPCLIP(reference_clip(), CLASSNAMES, n_ctx_text=3, n_ctx_vision=2, depth_text=2, depth_vision=1,
                     ctx_init="")
    deep_text = model.prompt_learner.deep_text_prompts()
    encoder = model.text_encoder
    fast = encoder.encode_learned_prompts(model.prompt_learner, deep_text)
    encoder.shared_prefix = False
    full = encoder.encode_learned_prompts(model.prompt_learner, deep_text)
    plain = encoder.encode_learned_prompts(model.prompt_learner)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full, plain, atol=1e-3)  # the deep prompts change the features


def test_context_follows_the_authors_rule():
    clip_model = reference_clip()
    short = MaPLeCLIP(clip_model, CLASSNAMES, n_ctx=2, depth=2, ctx_init="a photo of a").prompt_learner
    assert short.ctx.shape[0] == 2 and short.prompts_text[0] == "a photo of a dog."  # "of a" stays fixed words
    long = MaPLeCLIP(clip_model, CLASSNAMES, n_ctx=5, depth=2, ctx_init="a photo of a").prompt_learner
    assert long.ctx.shape[0] == 5 and long.prompts_text[0] == "X X X X X dog."  # > 4 tokens: random context


@pytest.mark.parametrize("opts,message", [
    # Upstream takes the EOT and padding embeddings as context and drops the class name's first tokens.
    (("TRAINER.MAPLE.N_CTX", "4", "TRAINER.MAPLE.CTX_INIT", "a photo"), "can learn 1..2 of its tokens"),
    # Upstream builds prompts for blocks that do not exist and trains them for nothing.
    (("TRAINER.MAPLE.PROMPT_DEPTH", "3"), "MaPLe prompt depth must be in 1..2"),
])
def test_inputs_the_reference_mishandles_are_clear_errors(tmp_path, data_root, tiny_clip_file, opts, message):
    with pytest.raises(UserError, match=message):
        build("MaPLe", data_root, tiny_clip_file, tmp_path / "run", extra=opts)


def naive_layer_prompted_image(visual, images, layer_prompts):
    """The authors' image forward, written plainly with CLIP's own blocks: prompts 0 join the tokens before
    ln_pre, block i < J gets its input's last P tokens replaced by prompts i, every token runs every block."""
    n_prompts = layer_prompts.shape[1]
    x = visual.conv1(images).flatten(2).transpose(1, 2)  # [B, N - 1, D]
    x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + visual.positional_embedding
    x = torch.cat([x, layer_prompts[0].expand(x.shape[0], -1, -1)], dim=1)
    x = visual.ln_pre(x).permute(1, 0, 2)  # [N + P, B, D]
    for index, block in enumerate(visual.transformer.resblocks):
        if 0 < index < layer_prompts.shape[0]:
            x = torch.cat([x[:-n_prompts], layer_prompts[index].unsqueeze(1).expand(-1, x.shape[1], -1)])
        x = block(x)
    return visual.ln_post(x[0]) @ visual.proj


@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_layer_prompts_carried_through_the_blocks_after_the_last_prompted_one(n_layers):
    """A 4-block ViT with prompts in the first J blocks: J = 4 (replaced in every block), J = 2 (the prompt
    tokens' outputs go on through blocks 2 and 3), J = 1 (input prompts only)."""
    from dpt_models.clip_backbone import tiny_clip
    from dpt_models.visual import PromptedViT

    torch.manual_seed(0)
    clip_model = tiny_clip(vision_layers=4)
    images, layer_prompts = torch.randn(2, 3, 32, 32), torch.randn(n_layers, 3, 64)
    with torch.no_grad():
        ours = PromptedViT(clip_model.visual).forward_with_layer_prompts(images, layer_prompts)
        expected = naive_layer_prompted_image(clip_model.visual, images, layer_prompts)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
