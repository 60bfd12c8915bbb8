"""Prompted forward of CLIP's Vision Transformer: deep visual prompts (VPT-deep) and per-block prompts.

Deep visual prompt tuning follows Jia et al., "Visual Prompt Tuning" (ECCV 2022), in the variant that
DPT (Xing et al., "Dual Modality Prompt Tuning for Vision-Language Pre-Trained Model", IEEE TMM 2023;
reference implementation github.com/fanrena/DPT) builds on: before each transformer block, P prompt
tokens are appended at the END of the sequence (after CLS and patches, after `ln_pre`, without
positional embedding), the block runs, and the last P tokens are dropped, so every block sees fresh
prompts.

The forward reuses CLIP's own modules and weights (`clip_model.visual`, OpenAI's or open_clip's ViT):
nothing is copied, so the prompted encoder with no prompts computes CLIP's `encode_image` (within fp32
rounding: the last block computes only the CLS token's output, the one the projection reads).
Tokens are sequence-first, as in OpenAI's CLIP: x is [N, B, D] with N = 1 + number of patches, D the
ViT width; open_clip's batch-first blocks get them as [B, N, D] (`PromptedViT.run_block`).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .text import merge_heads, split_heads


def run_block_with_prompts(block, x, prompts=None, batch_first=False, cls_only=False):
    """Run one CLIP residual block on x [N, B, D] with prompt tokens appended, then drop them.

    prompts: None, [P, D] (shared by the batch) or [P, B, D] (per sample). batch_first: the block
    takes [B, N, D] (open_clip's). cls_only: return only the CLS token's output [1, B, D] (the last
    block, whose other outputs nothing reads). Returns [N, B, D].

    The prompts' outputs are dropped, so they enter the block only as keys and values
    (`attend_and_update`): their queries, attention and MLP are not computed. Without prompts and
    cls_only False, the block is CLIP's own module call.
    """
    if prompts is None and not cls_only:
        if batch_first:
            return block(x.transpose(0, 1).contiguous()).transpose(0, 1)  # block on [B, N, D]
        return block(x)
    tokens = x
    if prompts is not None:
        if prompts.dim() == 2:
            prompts = prompts.unsqueeze(1).expand(-1, x.shape[1], -1)
        tokens = torch.cat([x, prompts.to(x.dtype)], dim=0)  # [N + P, B, D]
    return attend_and_update(block, tokens, 1 if cls_only else x.shape[0])


def attend_and_update(block, tokens, n_queries):
    """CLIP's residual block (`x + attn(ln_1 x)`, then `x + mlp(ln_2 x)`, no mask) for the first
    `n_queries` of `tokens` [T, B, D], attending to all T: returns [n_queries, B, D].

    The same function as the block on all T tokens followed by keeping the first n_queries (within
    fp32 rounding), with the work of the other T - n_queries tokens reduced to their keys and values.
    """
    attn = block.attn
    width = tokens.shape[-1]
    weight_q, weight_kv = attn.in_proj_weight.split([width, 2 * width])
    bias_q, bias_kv = (None, None) if attn.in_proj_bias is None else attn.in_proj_bias.split([width, 2 * width])
    normed = block.ln_1(tokens).transpose(0, 1)  # [B, T, D]
    queries = split_heads(F.linear(normed[:, :n_queries], weight_q, bias_q), attn.num_heads)  # [B, H, Q, D / H]
    keys, values = (split_heads(t, attn.num_heads) for t in F.linear(normed, weight_kv, bias_kv).chunk(2, dim=-1))
    attended = F.scaled_dot_product_attention(
        queries, keys, values, dropout_p=attn.dropout if attn.training else 0.0
    )  # [B, H, Q, D / H]
    x = tokens[:n_queries] + attn.out_proj(merge_heads(attended)).transpose(0, 1)  # [Q, B, D]
    return x + block.mlp(block.ln_2(x))


def block_attention_weights(block, x, prompts=None):
    """The attention weights of one CLIP residual block on x [N, B, D] (+ prompts, as in
    `run_block_with_prompts`), averaged over heads: [B, N + P, N + P], rows are queries.

    Recomputes the block's own attention (its `ln_1` and `attn`; ViT blocks have no mask) with the
    weights returned; row 0 is the CLS token's attention over CLS, the patches and the prompts.
    """
    if prompts is not None:
        if prompts.dim() == 2:
            prompts = prompts.unsqueeze(1).expand(-1, x.shape[1], -1)
        x = torch.cat([x, prompts.to(x.dtype)], dim=0)  # [N + P, B, D]
    normed = block.ln_1(x)
    if getattr(block.attn, "batch_first", False):  # open_clip's blocks take [B, N, D]
        normed = normed.transpose(0, 1)
    _, weights = block.attn(normed, normed, normed, need_weights=True, average_attn_weights=True)
    return weights


class PromptedViT(nn.Module):
    """CLIP's ViT image encoder, run block by block so that prompt tokens can join each block.

    Holds a reference to `clip_model.visual` (frozen by the owner); `forward(images)` without prompts
    equals `clip_model.encode_image(images)` within fp32 rounding.
    """

    def __init__(self, clip_visual):
        super().__init__()
        if not hasattr(clip_visual, "transformer") or not hasattr(clip_visual, "class_embedding"):
            raise ValueError(
                "Visual prompts need a Vision Transformer CLIP backbone (ViT-B/32, ViT-B/16, ...); "
                f"got {type(clip_visual).__name__}."
            )
        self.visual = clip_visual
        self.batch_first = getattr(clip_visual.transformer, "batch_first", False)  # open_clip's blocks

    @property
    def depth(self):
        """Number of transformer blocks."""
        return len(self.visual.transformer.resblocks)

    @property
    def width(self):
        """Token width D."""
        return self.visual.conv1.out_channels

    @property
    def output_dim(self):
        """Embedding dimension E of the projected image feature."""
        return self.visual.output_dim

    @property
    def blocks(self):
        return self.visual.transformer.resblocks

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def embed(self, images, input_prompts=None):
        """Images [B, 3, H, W] -> tokens [N, B, D]: patches, CLS, positional embedding, ln_pre.

        input_prompts: None or [P, D], appended after the patches before ln_pre (no positional
        embedding; MaPLe's and IVLP's first-layer prompts) -> tokens [N + P, B, D].
        """
        visual = self.visual
        x = visual.conv1(images.to(self.dtype))  # [B, D, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, grid**2, D]
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)  # [B, N, D]
        if input_prompts is not None:
            x = torch.cat([x, input_prompts.to(x.dtype).expand(x.shape[0], -1, -1)], dim=1)  # [B, N + P, D]
        return visual.ln_pre(x).permute(1, 0, 2)  # [N (+ P), B, D]

    def project(self, x):
        """Tokens [N, B, D] -> image features [B, E]: ln_post of the CLS token, then the projection."""
        features = self.visual.ln_post(x[0])
        if self.visual.proj is not None:
            features = features @ self.visual.proj
        return features

    def forward(self, images, deep_prompts=None):
        """Image features [B, E].

        deep_prompts: None or [L_p, P, D] with L_p <= depth; block i < L_p gets deep_prompts[i],
        the remaining blocks run without prompts.
        """
        x = self.embed(images)
        n_prompted = 0 if deep_prompts is None else deep_prompts.shape[0]
        for index, block in enumerate(self.blocks):
            prompts = deep_prompts[index] if index < n_prompted else None
            x = self.run_block(block, x, prompts, cls_only=index == self.depth - 1)
        return self.project(x)

    def forward_with_layer_prompts(self, images, layer_prompts):
        """Image features [B, E] with prompts that stay in the sequence (MaPLe, IVLP, PromptSRC).

        layer_prompts [J, P, D], 1 <= J <= depth: layer_prompts[0] joins the patches before ln_pre
        (`embed`); the input of block i = 1..J-1 has its last P tokens replaced by layer_prompts[i];
        from block J on, the prompt tokens' outputs go on through the blocks as ordinary tokens.
        A block whose prompt outputs the next block replaces computes only the image tokens' outputs
        (`attend_and_update`), the last block only the CLS token's.
        """
        n_layers, n_prompts, _ = layer_prompts.shape
        tokens = self.embed(images, layer_prompts[0])  # [N + P, B, D]
        n_image = tokens.shape[0] - n_prompts
        for index, block in enumerate(self.blocks):
            if 0 < index < n_layers:
                prompts = layer_prompts[index].to(tokens.dtype).unsqueeze(1).expand(-1, tokens.shape[1], -1)
                tokens = torch.cat([tokens[:n_image], prompts])  # [N + P, B, D]
            if index == self.depth - 1:
                tokens = attend_and_update(block, tokens, 1)  # [1, B, D]
            elif index + 1 < n_layers:
                tokens = attend_and_update(block, tokens, n_image)  # [N, B, D]
            else:
                tokens = self.run_block(block, tokens)  # [N + P, B, D]
        return self.project(tokens)

    def run_block(self, block, x, prompts=None, cls_only=False):
        """`run_block_with_prompts` in this ViT's block layout: x [N, B, D] -> [N, B, D] ([1, B, D] for
        cls_only)."""
        return run_block_with_prompts(block, x, prompts, self.batch_first, cls_only)


class DeepVisualPrompts(nn.Module):
    """Learnable deep visual prompts: `ctx` [n_blocks, n_tokens, width], initialised N(0, 0.02)."""

    def __init__(self, n_blocks, n_tokens, width):
        super().__init__()
        if n_tokens < 1:
            raise ValueError(f"The number of visual prompt tokens must be >= 1, got {n_tokens}")
        self.ctx = nn.Parameter(torch.empty(n_blocks, n_tokens, width))
        nn.init.normal_(self.ctx, std=0.02)

    def forward(self):
        """The prompts [n_blocks, n_tokens, width]."""
        return self.ctx
