"""dpt_models/text.py: the prompt learner (class-token positions, CTX_INIT, batched assembly) and the text
encoder (truncated encoding equals CLIP's full-length one, gradient checkpointing)."""
import pytest
import torch
import torch.nn.functional as F
from conftest import folder_run_args, read_log
from reference import assert_close, coop_reference_model

from dpt_models.clip_backbone import clip, tiny_clip
from dpt_models.templates import class_prompts
from dpt_models.text import PromptLearner, TextEncoder


def full_length_prompt_features(clip_model, learner):
    """What CoOp computes: all 77 positions through CLIP's own transformer and 77x77 mask."""
    tokenized = learner.tokenized_prompts
    with torch.no_grad():
        embedding = clip_model.token_embedding(tokenized)  # [C, 77, W]
    ctx = learner.ctx.unsqueeze(0).expand(learner.n_cls, -1, -1)
    prompts = torch.cat([embedding[:, :1], ctx, embedding[:, 1 + learner.n_ctx :]], dim=1)
    x = (prompts + clip_model.positional_embedding).permute(1, 0, 2)
    x = clip_model.ln_final(clip_model.transformer(x).permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), tokenized.argmax(-1)] @ clip_model.text_projection


def test_truncated_text_encoding_equals_full_length():
    clip_model = tiny_clip(seed=3)
    classnames = ["Annual Crop Land", "Forest", "a much longer class name with many words in it"]
    learner = PromptLearner(classnames, clip_model, n_ctx=16)
    encoder = TextEncoder(clip_model)
    assert learner().shape[1] < 77  # the point: fewer positions than CLIP's context
    truncated = encoder(learner(), learner.eot_indices)
    assert_close(truncated, full_length_prompt_features(clip_model, learner), atol=1e-5, what="prompt features")

    tokens = clip.tokenize(class_prompts("a photo of a {}.", classnames))
    with torch.no_grad():
        assert_close(encoder.encode_tokens(tokens), clip_model.encode_text(tokens), atol=1e-5, what="templates")


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_class_token_positions_place_the_name(position):
    clip_model = tiny_clip(seed=1)
    learner = PromptLearner(["dog", "sea lion"], clip_model, n_ctx=4, class_token_position=position)
    prompts = learner()
    with torch.no_grad():
        name = clip_model.token_embedding(clip.tokenize("sea lion")[0, 1:3])
    start = {"end": 1 + 4, "middle": 1 + 2, "front": 1}[position]
    torch.testing.assert_close(prompts[1, start : start + 2], name)


def test_ctx_init_sets_context_length_and_values():
    clip_model = tiny_clip(seed=1)
    learner = PromptLearner(["dog"], clip_model, n_ctx=16, ctx_init="a photo of a")
    assert learner.n_ctx == 4 and learner.ctx.shape == (4, 128)
    with torch.no_grad():
        expected = clip_model.token_embedding(clip.tokenize("a photo of a"))[0, 1:5]
    torch.testing.assert_close(learner.ctx.detach(), expected)


def test_text_encoder_gradient_checkpointing_computes_the_same_gradients():
    ref, model = coop_reference_model()
    grads, saved = [], []
    for checkpointing in (False, True):
        model.text_encoder.gradient_checkpointing = checkpointing
        model.prompt_learner.ctx.grad = None
        count = [0]

        def pack(tensor, count=count):
            count[0] += 1
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = F.cross_entropy(model.train()(ref["images"])["logits"], ref["labels"])
        loss.backward()
        grads.append(model.prompt_learner.ctx.grad.clone())
        saved.append(count[0])
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-5)
    assert saved[1] < saved[0]  # the blocks' activations are recomputed, not stored


def test_text_grad_checkpoint_option_reaches_the_text_encoder(run_train, tmp_path, data_root, tiny_clip_file):
    trainer = run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "ckpt", epochs=1,
                                        extra=("MODEL.TEXT_GRAD_CHECKPOINT", "True")))
    assert trainer.model.text_encoder.gradient_checkpointing
    assert "* accuracy:" in read_log(tmp_path / "ckpt")


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_batched_prompt_assembly_equals_per_image_assembly(position):
    learner = PromptLearner(["dog", "sea lion", "Annual Crop Land"], tiny_clip(seed=1), n_ctx=4,
                            class_token_position=position)
    ctx = torch.randn(2, 3, 4, learner.ctx.shape[-1])  # [B, C, M, W]
    batched = learner.assemble(ctx)
    assert batched.shape[:2] == (2, 3)
    for b in range(2):
        torch.testing.assert_close(batched[b], learner.assemble(ctx[b]), atol=0, rtol=0)
