"""Class-aware visual prompt tuning (CAVPT), the visual half of DPT.

Xing et al., "Dual Modality Prompt Tuning for Vision-Language Pre-Trained Model", IEEE TMM 2023
(arXiv 2208.08340); reference implementation github.com/fanrena/DPT (class `CAVPT` there).

For each class-aware ViT block, a generator turns the (learned) text features of the K classes that a
frozen zero-shot CLIP ranks highest for an image into K visual prompt tokens:

    q0     = Linear(E -> D, bias)(text)                        K query tokens
    kv     = concat(x.detach(), extra tokens)                  the block's input tokens + learnable ones
    out    = Wv(softmax(Wq q0 . (Wk kv)^T / sqrt(d_attn)) kv)  single head; Wv after the weighted sum
    aux    = Linear(D -> C, no bias)(LayerNorm_a(out))         auxiliary C-way logits of each prompt
    prompt = LayerNorm_b(out + q0)

The auxiliary classifier (`aux_classifier`) is class-dependent: the DPT trainer drops it when
prompts are loaded for another class set.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ClassAwarePromptGenerator(nn.Module):
    """Generates the class-aware prompts of one ViT block (the formula of the module docstring).

    Args:
        text_dim: E, the CLIP embedding dimension of the text features.
        width: D, the ViT token width.
        n_classes: C, the classes of the auxiliary classifier.
        n_extra_tokens: learnable key/value tokens appended to the block's input tokens.
        attn_dim: dimension of the query/key projections.
    """

    def __init__(self, text_dim, width, n_classes, n_extra_tokens=10, attn_dim=32):
        super().__init__()
        self.text_to_query = nn.Linear(text_dim, width)
        self.extra_tokens = nn.Parameter(torch.empty(n_extra_tokens, width))
        nn.init.normal_(self.extra_tokens, std=0.02)
        self.query_proj = nn.Linear(width, attn_dim, bias=False)
        self.key_proj = nn.Linear(width, attn_dim, bias=False)
        self.value_proj = nn.Linear(width, width, bias=False)
        self.aux_norm = nn.LayerNorm(width)
        self.aux_classifier = nn.Linear(width, n_classes, bias=False)
        self.prompt_norm = nn.LayerNorm(width)

    def queries_keys_values(self, x, text_features):
        """The attention's inputs: queries [B, K, D], q [B, K, attn_dim], k [B, N + n_extra, attn_dim]
        and the key/value tokens [B, N + n_extra, D] (the block's input tokens, then the extra ones)."""
        queries = self.text_to_query(text_features)  # [B, K, D]
        tokens = x.detach().permute(1, 0, 2)  # [B, N, D]; no gradient into the image tokens
        extra = self.extra_tokens.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        key_values = torch.cat([tokens, extra], dim=1)  # [B, N + n_extra, D]
        q = self.query_proj(queries)  # [B, K, attn_dim]
        k = self.key_proj(key_values)  # [B, N + n_extra, attn_dim]
        return queries, q, k, key_values

    def attention_weights(self, x, text_features):
        """Where each class's prompt looks: softmax(q k^T / sqrt(attn_dim)) [B, K, N + n_extra].

        Same inputs as `forward`; columns are the block's tokens (CLS, patches) then the extra tokens.
        """
        _, q, k, _ = self.queries_keys_values(x, text_features)
        return torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)

    def forward(self, x, text_features):
        """x [N, B, D]: the block's input tokens; text_features [B, K, E] of each image's top-K classes.

        Returns prompts [K, B, D] and auxiliary logits [K, B, C].
        """
        queries, q, k, key_values = self.queries_keys_values(x, text_features)
        # softmax(q k^T / sqrt(attn_dim)) applied to the raw tokens; the value projection comes after.
        attended = F.scaled_dot_product_attention(q, k, key_values.to(q.dtype))  # [B, K, D]
        attended = self.value_proj(attended)
        aux_logits = self.aux_classifier(self.aux_norm(attended))  # [B, K, C]
        prompts = self.prompt_norm(attended + queries)  # [B, K, D]
        return prompts.permute(1, 0, 2), aux_logits.permute(1, 0, 2)


class ClassAwarePrompts(nn.ModuleList):
    """One `ClassAwarePromptGenerator` per class-aware block, in block order."""

    def __init__(self, n_blocks, text_dim, width, n_classes, n_extra_tokens=10, attn_dim=32):
        super().__init__(
            ClassAwarePromptGenerator(text_dim, width, n_classes, n_extra_tokens, attn_dim) for _ in range(n_blocks)
        )
