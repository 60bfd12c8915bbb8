"""The text side shared by every prompt-tuning trainer: CoOp's prompt learner and a text encoder
that takes token embeddings instead of token ids.

Speed: under CLIP's causal mask the feature at the EOT token depends only on the tokens before it,
so prompts are encoded only up to the longest prompt's EOT instead of all 77 positions (exact).
"""
import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from .clip_backbone import clip


class OpenAITokenizer:
    """OpenAI CLIP's BPE tokenizer with open_clip's tokenizer interface: `tokenizer(texts)` -> ids
    [N, 77] ([SOS] text [EOT], zero-padded), `tokenizer.encode(text)` -> the text's BPE ids."""

    def __init__(self):
        self.bpe = clip.simple_tokenizer.SimpleTokenizer()

    def __call__(self, texts):
        return clip.tokenize(texts)

    def encode(self, text):
        return self.bpe.encode(text)


OPENAI_TOKENIZER = OpenAITokenizer()


def tokenizer_of(clip_model):
    """The model's own tokenizer: an open_clip model carries it (`open_clip_backbone`); OpenAI CLIP's otherwise."""
    return getattr(clip_model, "tokenizer", OPENAI_TOKENIZER)


def causal_mask(length, device=None, dtype=torch.float32):
    """CLIP's additive causal attention mask [length, length]: -inf above the diagonal."""
    return torch.full((length, length), float("-inf"), device=device, dtype=dtype).triu_(1)


def run_text_block(block, x, attn_mask):
    """One CLIP ResidualAttentionBlock on x [L, N, W] ([N, L, W] for open_clip's batch-first blocks) with a
    given mask (CLIP's own fixes L = 77)."""
    x = x + block.attn(block.ln_1(x), block.ln_1(x), block.ln_1(x), need_weights=False, attn_mask=attn_mask)[0]
    return x + block.mlp(block.ln_2(x))


def encoded_length(tokenized):
    """Positions needed to reach the last EOT token of `tokenized` [N, 77] (EOT has the largest id)."""
    return int(tokenized.argmax(dim=-1).max().item()) + 1


class TextEncoder(nn.Module):
    """CLIP's text transformer, final LayerNorm and projection, applied to token embeddings."""

    def __init__(self, clip_model, gradient_checkpointing=False):
        super().__init__()
        self.tokenizer = tokenizer_of(clip_model)
        # open_clip's blocks may take [N, L, W] (batch first); OpenAI CLIP's take [L, N, W].
        self.batch_first = getattr(clip_model.transformer, "batch_first", False)
        # Recompute each block's activations in the backward pass instead of storing them: less
        # memory for many prompts (1000-class ImageNet), one more forward of the text encoder.
        self.gradient_checkpointing = gradient_checkpointing
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.token_embedding = clip_model.token_embedding

    def forward(self, prompts, eot_indices):
        """prompts [N, L, W] (L <= 77, covering every EOT), eot_indices [N] -> features [N, E]."""
        length = prompts.shape[1]
        x = prompts + self.positional_embedding[:length].to(prompts.dtype)
        if not self.batch_first:
            x = x.permute(1, 0, 2)  # [L, N, W]
        mask = causal_mask(length, device=x.device, dtype=x.dtype)
        checkpointing = self.gradient_checkpointing and torch.is_grad_enabled() and prompts.requires_grad
        for block in self.transformer.resblocks:
            if checkpointing:
                x = checkpoint(run_text_block, block, x, mask, use_reentrant=False)
            else:
                x = run_text_block(block, x, mask)
        x = self.ln_final(x if self.batch_first else x.permute(1, 0, 2))  # [N, L, W]
        return x[torch.arange(x.shape[0], device=x.device), eot_indices] @ self.text_projection

    def encode_tokens(self, tokenized):
        """Features [N, E] of token ids [N, 77], encoding only up to the longest prompt."""
        length = encoded_length(tokenized)
        embeddings = self.token_embedding(tokenized[:, :length])
        return self(embeddings, tokenized.argmax(dim=-1))

    @torch.no_grad()
    def encode_texts(self, texts, normalize=True):
        """Features [N, E] of a list of strings (frozen CLIP, no gradient)."""
        device = self.text_projection.device
        tokenized = self.tokenizer(texts).to(device)
        features = self.encode_tokens(tokenized)
        return features / features.norm(dim=-1, keepdim=True) if normalize else features


class PromptLearner(nn.Module):
    """CoOp's learnable context: `[SOS] ctx_1..ctx_M {classname}. [EOS]` token embeddings per class.

    ctx is [M, W] (shared) or [C, M, W] (class-specific, CSC). The embeddings of [SOS] (prefix) and
    of `classname . [EOS]` (suffix) are frozen, class-dependent, non-persistent buffers, truncated
    at the longest prompt's EOT; so checkpoints hold only the context and load for any class set.
    """

    def __init__(self, classnames, clip_model, n_ctx=16, ctx_init="", csc=False, class_token_position="end"):
        super().__init__()
        if class_token_position not in ("end", "middle", "front"):
            raise ValueError(f"CLASS_TOKEN_POSITION must be end, middle or front, got {class_token_position!r}")
        n_cls = len(classnames)
        ctx_dim = clip_model.ln_final.weight.shape[0]
        token_embedding = clip_model.token_embedding
        tokenizer = tokenizer_of(clip_model)

        if ctx_init:
            ctx_init = ctx_init.replace("_", " ")
            n_ctx = len(ctx_init.split(" "))
            with torch.no_grad():
                init_embedding = token_embedding(tokenizer(ctx_init).to(token_embedding.weight.device))
            ctx_vectors = init_embedding[0, 1 : 1 + n_ctx].clone()
            if csc:
                ctx_vectors = ctx_vectors.unsqueeze(0).repeat(n_cls, 1, 1)
            prompt_prefix = ctx_init
        else:
            shape = (n_cls, n_ctx, ctx_dim) if csc else (n_ctx, ctx_dim)
            ctx_vectors = torch.empty(shape, dtype=token_embedding.weight.dtype)
            nn.init.normal_(ctx_vectors, std=0.02)
            prompt_prefix = " ".join(["X"] * n_ctx)
        self.ctx = nn.Parameter(ctx_vectors)

        classnames = [name.replace("_", " ") for name in classnames]
        self.name_lens = [len(tokenizer.encode(name)) for name in classnames]
        self.prompts_text = [f"{prompt_prefix} {name}." for name in classnames]
        tokenized = tokenizer(self.prompts_text).to(token_embedding.weight.device)  # [C, 77]
        length = encoded_length(tokenized)
        with torch.no_grad():
            embedding = token_embedding(tokenized[:, :length])  # [C, L, W]
        self.register_buffer("token_prefix", embedding[:, :1], persistent=False)
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx :], persistent=False)
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        self.register_buffer("eot_indices", tokenized.argmax(dim=-1), persistent=False)
        self.n_cls = n_cls
        self.n_ctx = n_ctx
        self.class_token_position = class_token_position

    def forward(self):
        """Prompt embeddings [C, L, W]."""
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        return self.assemble(ctx)

    def assemble(self, ctx):
        """Place context vectors ctx [..., C, M, W] around each class name -> prompts [..., C, L, W].

        Leading dimensions are kept: CoCoOp passes one context per image, [B, C, M, W].
        """
        leading = ctx.shape[:-3]
        prefix = self.token_prefix.expand(*leading, -1, -1, -1)  # [..., C, 1, W]
        suffix = self.token_suffix.expand(*leading, -1, -1, -1)  # [..., C, L - 1 - M, W]
        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=-2)
        prompts = []
        half = self.n_ctx // 2
        for i, name_len in enumerate(self.name_lens):
            class_i = (..., slice(i, i + 1), slice(None), slice(None))  # keeps the class dimension
            ctx_i, prefix_i, suffix_i = ctx[class_i], prefix[class_i], suffix[class_i]
            class_tokens, rest = suffix_i[..., :name_len, :], suffix_i[..., name_len:, :]
            if self.class_token_position == "middle":
                parts = [prefix_i, ctx_i[..., :half, :], class_tokens, ctx_i[..., half:, :], rest]
            else:
                parts = [prefix_i, class_tokens, ctx_i, rest]
            prompts.append(torch.cat(parts, dim=-2))
        return torch.cat(prompts, dim=-3)


class EvalTextCache:
    """Holds text features computed once per evaluation.

    `get(key, compute)` calls `compute()` in training or whenever autograd is on; under
    `torch.no_grad()` / inference mode in eval mode it computes once and reuses the result.
    Owners call `clear()` from `train(mode)`, so every evaluation (model.eval()) starts fresh.
    """

    def __init__(self):
        self._values = {}

    def clear(self):
        self._values.clear()

    def get(self, key, compute, training):
        if training or torch.is_grad_enabled():
            return compute()
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]
