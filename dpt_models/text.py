"""The text side shared by every prompt-tuning trainer: CoOp's prompt learner and a text encoder
that takes token embeddings instead of token ids.

Speed (both exact): under CLIP's causal mask a position's hidden state depends only on the positions
before it. So prompts are encoded only up to the longest prompt's EOT instead of all 77 positions;
and when every class's prompt starts with the same `[SOS] ctx_1..ctx_M` (a shared context, class
token at the end), that prefix is encoded once and only each class's own positions (`name . [EOS]`)
are encoded per class, attending to the prefix's keys and values (`encode_with_shared_prefix`), each
class only up to its own EOT (classes of one length together) and, in the last block, only the EOT.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .clip_backbone import clip


class OpenAITokenizer:
    """OpenAI CLIP's BPE tokenizer with open_clip's tokenizer interface: `tokenizer(texts)` -> ids
    [N, 77] ([SOS] text [EOT], zero-padded), `tokenizer.encode(text)` -> the text's BPE ids,
    `tokenizer.decoder` -> {id: BPE token}."""

    def __init__(self):
        self.bpe = clip.simple_tokenizer.SimpleTokenizer()
        self.decoder = self.bpe.decoder

    def __call__(self, texts):
        return clip.tokenize(texts)

    def encode(self, text):
        return self.bpe.encode(text)


OPENAI_TOKENIZER = OpenAITokenizer()


def tokenizer_of(clip_model):
    """The model's own tokenizer: an open_clip model carries it (`open_clip_backbone`); OpenAI CLIP's otherwise."""
    return getattr(clip_model, "tokenizer", OPENAI_TOKENIZER)


class PromptTooLong(ValueError):
    """A class's prompt has more tokens than the text encoder's context (77 for CLIP).

    classname, prompt: which; n_tokens: its length with [SOS] and [EOT]; context_length: the limit;
    context_tokens: how many of its tokens are the learnable context's (0 for a template's prompt).
    """

    def __init__(self, classname, prompt, n_tokens, context_length, context_tokens=0):
        self.classname, self.prompt, self.n_tokens = classname, prompt, n_tokens
        self.context_length, self.context_tokens = context_length, context_tokens
        super().__init__(
            f"the prompt of class {classname!r} ({prompt!r}) is {n_tokens} tokens long, more than the text "
            f"encoder's context of {context_length}"
        )


def check_prompt_lengths(prompts, classnames, clip_model, context_tokens=0):
    """Raise PromptTooLong for the first prompt (one per class) longer than the text encoder's context."""
    tokenizer = tokenizer_of(clip_model)
    context_length = clip_model.positional_embedding.shape[0]
    for prompt, classname in zip(prompts, classnames):
        n_tokens = len(tokenizer.encode(prompt)) + 2  # [SOS] prompt [EOT]
        if n_tokens > context_length:
            raise PromptTooLong(classname, prompt, n_tokens, context_length, context_tokens)


def causal_mask(length, device=None, dtype=torch.float32):
    """CLIP's additive causal attention mask [length, length]: -inf above the diagonal."""
    return torch.full((length, length), float("-inf"), device=device, dtype=dtype).triu_(1)


def run_text_block(block, x, attn_mask):
    """One CLIP ResidualAttentionBlock on x [L, N, W] ([N, L, W] for open_clip's batch-first blocks) with a
    given mask (CLIP's own fixes L = 77)."""
    x = x + block.attn(block.ln_1(x), block.ln_1(x), block.ln_1(x), need_weights=False, attn_mask=attn_mask)[0]
    return x + block.mlp(block.ln_2(x))


def split_heads(x, n_heads):
    """[..., L, W] -> [..., H, L, W / H]."""
    return x.unflatten(-1, (n_heads, -1)).transpose(-3, -2)


def merge_heads(x):
    """[..., H, L, D] -> [..., L, H * D]."""
    return x.transpose(-3, -2).flatten(-2)


def run_shared_prefix_block(block, prefix, suffixes, last_position_only=False):
    """One CLIP ResidualAttentionBlock on G shared prefixes and their classes' own positions.

    prefix [G, P, W]: the positions every class shares (causal attention among themselves);
    suffixes: groups of classes of one length each, [G, C_i, S_i, W]: each class's own positions,
    attending to the P prefix positions of their G index and causally to their own. The same function
    as `run_text_block` on the G * C concatenated sequences [P + S_i], whose first P positions are the
    same for every class. Returns (prefix, suffixes) after the block.

    last_position_only (the last block): only each class's last position (its EOT) is computed,
    suffixes [G, C_i, 1, W]; the prefix serves only as keys and values and is returned as None.
    """
    attn = block.attn
    n_heads = attn.num_heads
    weight_q, weight_k, weight_v = attn.in_proj_weight.chunk(3)
    bias_q, bias_k, bias_v = attn.in_proj_bias.chunk(3)
    hidden = block.ln_1(prefix)
    k_p = split_heads(F.linear(hidden, weight_k, bias_k), n_heads)  # [G, H, P, D]
    v_p = split_heads(F.linear(hidden, weight_v, bias_v), n_heads)
    if last_position_only:
        prefix = None
    else:
        q_p = split_heads(F.linear(hidden, weight_q, bias_q), n_heads)
        attended = F.scaled_dot_product_attention(q_p, k_p, v_p, is_causal=True)  # [G, H, P, D]
        prefix = prefix + attn.out_proj(merge_heads(attended))
        prefix = prefix + block.mlp(block.ln_2(prefix))

    outputs = []
    for suffix in suffixes:
        hidden = block.ln_1(suffix)
        queries = hidden[..., -1:, :] if last_position_only else hidden
        q_s = split_heads(F.linear(queries, weight_q, bias_q), n_heads) / math.sqrt(k_p.shape[-1])  # [G, C, H, Q, D]
        k_s = split_heads(F.linear(hidden, weight_k, bias_k), n_heads)  # [G, C, H, S, D]
        v_s = split_heads(F.linear(hidden, weight_v, bias_v), n_heads)
        n_groups, n_cls, _, n_queries, head_dim = q_s.shape
        # Scores against the prefix: the classes' queries of a G index in one matrix product with its
        # prefix keys (no per-class copy of them).
        q_by_group = q_s.transpose(1, 2).reshape(n_groups, n_heads, n_cls * n_queries, head_dim)  # [G, H, C*Q, D]
        scores_prefix = (q_by_group @ k_p.transpose(-1, -2)).view(n_groups, n_heads, n_cls, n_queries, -1)
        scores_prefix = scores_prefix.transpose(1, 2)  # [G, C, H, Q, P]
        scores_own = q_s @ k_s.transpose(-1, -2)  # [G, C, H, Q, S]
        if not last_position_only:  # the last position sees all S; the others causally
            scores_own = scores_own + causal_mask(n_queries, suffix.device, q_s.dtype)
        probs = torch.cat([scores_prefix, scores_own], dim=-1).softmax(dim=-1)  # [G, C, H, Q, P + S]
        probs_prefix, probs_own = probs.split([k_p.shape[-2], k_s.shape[-2]], dim=-1)
        from_prefix = probs_prefix.transpose(1, 2).reshape(n_groups, n_heads, n_cls * n_queries, -1) @ v_p
        from_prefix = from_prefix.view(n_groups, n_heads, n_cls, n_queries, head_dim).transpose(1, 2)
        attended = from_prefix + probs_own @ v_s  # [G, C, H, Q, D]
        x = suffix[..., -n_queries:, :] + attn.out_proj(merge_heads(attended))  # [G, C, Q, W]
        outputs.append(x + block.mlp(block.ln_2(x)))
    return prefix, outputs


def replace_context(x, deep_prompts, block_index, sequence_dim):
    """The input of text block `block_index` with deep text prompts: positions 1..M of x (the context
    after [SOS]) replaced by deep_prompts[block_index - 1] [M, W] for block_index = 1..J-1, otherwise x.

    x: [L, N, W] (sequence_dim 0) or [N, L, W] (sequence_dim 1); deep_prompts: None or [J - 1, M, W].
    """
    if deep_prompts is None or not 1 <= block_index <= deep_prompts.shape[0]:
        return x
    prompts = deep_prompts[block_index - 1].to(x.dtype)  # [M, W]
    n_ctx = prompts.shape[0]
    if sequence_dim == 0:
        prompts = prompts.unsqueeze(1).expand(-1, x.shape[1], -1)  # [M, N, W]
    else:
        prompts = prompts.expand(x.shape[0], -1, -1)  # [N, M, W]
    after = x.narrow(sequence_dim, 1 + n_ctx, x.shape[sequence_dim] - 1 - n_ctx)
    return torch.cat([x.narrow(sequence_dim, 0, 1), prompts, after], dim=sequence_dim)


def groups_by_eot(eot_indices):
    """Prompts grouped by EOT position: [(position, indices [C_i] of the prompts whose EOT is there), ...]."""
    return [(position, (eot_indices == position).nonzero().squeeze(1)) for position in eot_indices.unique().tolist()]


def in_original_order(grouped, groups, dim=0):
    """Rows of `grouped` (concatenated group by group along `dim`, as `groups` lists them) back in the
    order of the entries that `groups_by_eot` grouped."""
    order = torch.cat([indices for _, indices in groups])
    return grouped.index_select(dim, torch.argsort(order))


def encoded_length(tokenized):
    """Positions needed to reach the last EOT token of `tokenized` [N, 77] (EOT has the largest id)."""
    return int(tokenized.argmax(dim=-1).max().item()) + 1


class TextEncoder(nn.Module):
    """CLIP's text transformer, final LayerNorm and projection, applied to token embeddings."""

    def __init__(self, clip_model, gradient_checkpointing=False, shared_prefix=True):
        super().__init__()
        self.tokenizer = tokenizer_of(clip_model)
        # open_clip's blocks may take [N, L, W] (batch first); OpenAI CLIP's take [L, N, W].
        self.batch_first = getattr(clip_model.transformer, "batch_first", False)
        # Recompute each block's activations in the backward pass instead of storing them: less
        # memory for many prompts (1000-class ImageNet), one more forward of the text encoder.
        self.gradient_checkpointing = gradient_checkpointing
        # Encode a prefix shared by every class once (`encode_contexts`); False: always full prompts.
        self.shared_prefix = shared_prefix
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.token_embedding = clip_model.token_embedding

    def forward(self, prompts, eot_indices, deep_prompts=None):
        """prompts [N, L, W] (L <= 77, covering every EOT), eot_indices [N] -> features [N, E].

        deep_prompts: None or [J - 1, M, W]: the input of block i = 1..J-1 has its positions 1..M
        (the context after [SOS]) replaced by deep_prompts[i - 1] (deep text prompts, `replace_context`).
        """
        length = prompts.shape[1]
        x = prompts + self.positional_embedding[:length].to(prompts.dtype)
        if not self.batch_first:
            x = x.permute(1, 0, 2)  # [L, N, W]
        mask = causal_mask(length, device=x.device, dtype=x.dtype)
        checkpointing = self.checkpointing(prompts)
        for index, block in enumerate(self.transformer.resblocks):
            x = replace_context(x, deep_prompts, index, sequence_dim=1 if self.batch_first else 0)
            if checkpointing:
                x = checkpoint(run_text_block, block, x, mask, use_reentrant=False)
            else:
                x = run_text_block(block, x, mask)
        x = self.ln_final(x if self.batch_first else x.permute(1, 0, 2))  # [N, L, W]
        return x[torch.arange(x.shape[0], device=x.device), eot_indices] @ self.text_projection

    def checkpointing(self, tensor):
        return self.gradient_checkpointing and torch.is_grad_enabled() and tensor.requires_grad

    def encode_with_shared_prefix(self, prefix, suffix, eot_groups, deep_prompts=None):
        """Features [G, C, E] of the G * C prompts `prefix[g] + suffix[c]`.

        prefix [G, P, W]: G prefixes (positions 0..P-1), each shared by all C classes;
        suffix [C, S, W]: each class's positions P..P+S-1, the same under every prefix;
        eot_groups: the classes grouped by the EOT position of their full prompt (>= P), `groups_by_eot`.
        Classes are encoded in groups of equal length, each only up to its own EOT (no padding).
        deep_prompts: None or [J - 1, M, W], replacing prefix positions 1..M before blocks 1..J-1 (`forward`).
        """
        n_groups, length_prefix, _ = prefix.shape
        position = self.positional_embedding[: length_prefix + suffix.shape[1]].to(prefix.dtype)
        prefix = prefix + position[:length_prefix]
        suffixes = [
            (suffix[indices, : eot + 1 - length_prefix].to(prefix.dtype) + position[length_prefix : eot + 1])
            .expand(n_groups, -1, -1, -1)  # [G, C_i, S_i, W]: positions P..EOT
            for eot, indices in eot_groups
        ]
        checkpointing = self.checkpointing(prefix)
        last = len(self.transformer.resblocks) - 1
        for index, block in enumerate(self.transformer.resblocks):
            prefix = replace_context(prefix, deep_prompts, index, sequence_dim=1)
            if checkpointing:
                prefix, suffixes = checkpoint(
                    run_shared_prefix_block, block, prefix, suffixes, index == last, use_reentrant=False
                )
            else:
                prefix, suffixes = run_shared_prefix_block(block, prefix, suffixes, index == last)
        eot = in_original_order(torch.cat([s[:, :, -1] for s in suffixes], dim=1), eot_groups, dim=1)  # [G, C, W]
        return self.ln_final(eot) @ self.text_projection

    def encode_contexts(self, learner, contexts, deep_prompts=None):
        """Features [G, C, E] of `learner`'s C class prompts under each of G contexts [G, M, W].

        Each context is shared by all classes (CoOp's shared context: G = 1; CoCoOp: one per image).
        With the class token at the end the shared `[SOS] ctx` prefix is encoded once per context
        (exact, `encode_with_shared_prefix`); otherwise, or with `shared_prefix` off, full prompts.
        deep_prompts: None or [J - 1, M, W] deep text prompts (`forward`; class token at the end only).
        """
        n_groups = contexts.shape[0]
        if deep_prompts is not None and learner.class_token_position != "end":
            raise ValueError("Deep text prompts replace the context after [SOS]: the class token must be at the end")
        if self.shared_prefix and learner.class_token_position == "end":
            prefix = torch.cat([learner.token_prefix[:1].expand(n_groups, -1, -1).to(contexts.dtype), contexts], dim=1)
            return self.encode_with_shared_prefix(prefix, learner.token_suffix, learner.eot_groups, deep_prompts)
        prompts = learner.assemble(contexts.unsqueeze(1).expand(-1, learner.n_cls, -1, -1))  # [G, C, L, W]
        encoded = self.encode_by_length(  # [G * C, E]
            prompts.flatten(0, 1), learner.eot_indices.repeat(n_groups), deep_prompts=deep_prompts
        )
        return encoded.view(n_groups, learner.n_cls, -1)

    def encode_learned_prompts(self, learner, deep_prompts=None):
        """Features [C, E] of a PromptLearner's current prompts (shared or class-specific context);
        deep_prompts: None or [J - 1, M, W] deep text prompts (`forward`; shared context only)."""
        if learner.ctx.dim() == 2:
            return self.encode_contexts(learner, learner.ctx.unsqueeze(0), deep_prompts)[0]
        if deep_prompts is not None:
            raise ValueError("Deep text prompts are shared by all classes; a class-specific context (CSC) has none")
        return self.encode_by_length(learner(), learner.eot_indices, learner.eot_groups)

    def encode_by_length(self, prompts, eot_indices, eot_groups=None, deep_prompts=None):
        """Features [N, E] of prompts [N, L, W]: the prompts of one EOT position together, each group
        encoded only up to its EOT (exact under the causal mask), none padded to the longest."""
        groups = groups_by_eot(eot_indices) if eot_groups is None else eot_groups
        encoded = torch.cat([self(prompts[indices, : eot + 1], eot_indices[indices], deep_prompts)
                             for eot, indices in groups])
        return in_original_order(encoded, groups)

    def encode_tokens(self, tokenized):
        """Features [N, E] of token ids [N, 77], each prompt encoded only up to its EOT."""
        length = encoded_length(tokenized)
        return self.encode_by_length(self.token_embedding(tokenized[:, :length]), tokenized.argmax(dim=-1))

    @torch.no_grad()
    def encode_texts(self, texts, normalize=True):
        """Features [N, E] of a list of strings (frozen CLIP, no gradient)."""
        device = self.text_projection.device
        tokenized = self.tokenizer(texts).to(device)
        features = self.encode_tokens(tokenized)
        return features / features.norm(dim=-1, keepdim=True) if normalize else features


class TextEncodingSwitch:
    """What a model with a learned text encoder (`self.text_encoder`, a TextEncoder) exposes to set how it
    encodes, from outside (the trainer, from MODEL.TEXT_GRAD_CHECKPOINT and MODEL.TEXT_SHARED_PREFIX)."""

    def set_text_encoding(self, gradient_checkpointing=False, shared_prefix=True):
        """gradient_checkpointing: recompute the text encoder's activations in backward (memory for many
        classes); shared_prefix: encode the `[SOS] ctx` prefix all classes share once (exact). Returns self."""
        self.text_encoder.gradient_checkpointing = gradient_checkpointing
        self.text_encoder.shared_prefix = shared_prefix
        return self


class PromptLearner(nn.Module):
    """CoOp's learnable context: `[SOS] ctx_1..ctx_M {classname}. [EOS]` token embeddings per class.

    ctx is [M, W] (shared) or [C, M, W] (class-specific, CSC). The embeddings of [SOS] (prefix) and
    of `classname . [EOS]` (suffix) are frozen, class-dependent, non-persistent buffers, truncated
    at the longest prompt's EOT; so checkpoints hold only the context and load for any class set.

    ctx_init: initial context words; M becomes their number (CoOp's rule), unless
    `init_learned_tokens` is given: then only the first that many tokens of ctx_init are learned and
    the others stay fixed words between the context and the class name (MaPLe's N_CTX 2 with
    "a photo of a": `[SOS] ctx_1 ctx_2 of a {classname}. [EOS]`).
    """

    def __init__(self, classnames, clip_model, n_ctx=16, ctx_init="", csc=False, class_token_position="end",
                 init_learned_tokens=None):
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
            if init_learned_tokens is not None:
                n_init_tokens = len(tokenizer.encode(ctx_init))
                if not 1 <= init_learned_tokens <= n_init_tokens:
                    raise ValueError(
                        f"The context initialised from {ctx_init!r} ({n_init_tokens} tokens) can learn "
                        f"1..{n_init_tokens} of its tokens, got {init_learned_tokens}: use fewer context tokens "
                        "or a longer CTX_INIT"
                    )
                n_ctx = init_learned_tokens
            prompt_prefix = ctx_init
        else:
            prompt_prefix = " ".join(["X"] * n_ctx)
        classnames = [name.replace("_", " ") for name in classnames]
        self.name_lens = [len(tokenizer.encode(name)) for name in classnames]
        self.prompts_text = [f"{prompt_prefix} {name}." for name in classnames]
        check_prompt_lengths(self.prompts_text, classnames, clip_model, len(tokenizer.encode(prompt_prefix)))

        if ctx_init:
            with torch.no_grad():
                init_embedding = token_embedding(tokenizer(ctx_init).to(token_embedding.weight.device))
            ctx_vectors = init_embedding[0, 1 : 1 + n_ctx].clone()
            if csc:
                ctx_vectors = ctx_vectors.unsqueeze(0).repeat(n_cls, 1, 1)
        else:
            shape = (n_cls, n_ctx, ctx_dim) if csc else (n_ctx, ctx_dim)
            ctx_vectors = torch.empty(shape, dtype=token_embedding.weight.dtype)
            nn.init.normal_(ctx_vectors, std=0.02)
        self.ctx = nn.Parameter(ctx_vectors)
        tokenized = tokenizer(self.prompts_text).to(token_embedding.weight.device)  # [C, 77]
        length = encoded_length(tokenized)
        with torch.no_grad():
            embedding = token_embedding(tokenized[:, :length])  # [C, L, W]
        self.register_buffer("token_prefix", embedding[:, :1], persistent=False)
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx :], persistent=False)
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        self.register_buffer("eot_indices", tokenized.argmax(dim=-1), persistent=False)
        # The classes grouped by EOT position, once (buffers, so they follow the module's device): the text
        # encoder encodes each group only up to its EOT, with no per-step grouping or device sync.
        self.eot_positions = []
        for position, indices in groups_by_eot(self.eot_indices):
            self.register_buffer(f"eot_group_{position}", indices, persistent=False)
            self.eot_positions.append(position)
        self.n_cls = n_cls
        self.n_ctx = n_ctx
        self.class_token_position = class_token_position

    @property
    def eot_groups(self):
        """[(EOT position, indices [C_i] of the classes whose prompt ends there), ...] (`groups_by_eot`)."""
        return [(position, getattr(self, f"eot_group_{position}")) for position in self.eot_positions]

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
