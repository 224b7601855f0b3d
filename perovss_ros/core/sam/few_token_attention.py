"""SAM's cross-attention between a few prompt tokens and the image, without projecting the image.

SAM's decoder attends between ``T`` tokens (IoU and mask tokens plus the prompt points, about
8) and the ``N = h·w`` image tokens (4096 at 64×64), each of width ``C`` (256). Its
``Attention`` projects both sides to the internal width ``D`` (128) first. On the image side
that is two ``N×C×D`` products per attention (keys and values of token-to-image, queries
and output of image-to-token), the bulk of a decode on a CPU.

The same attention can be computed with the image tokens left at width ``C``. Per head ``h``
(width ``d = D / heads``) the logits are ``(q W_q,h + b_q,h)·(x W_k,h + b_k,h)`` for a token
query ``q`` and image token ``x``; that is ``(q_h W_k,hᵀ)·x`` plus a term constant along
the image axis. So the token side is projected into the image's width (``T×C`` per head)
and multiplied with the image tokens as they are. Each attention then costs
``heads·T·N·C`` instead of ``N·C·D`` multiply-adds: about half at ``T = 8`` (the break-even is
``T = D / heads``, 16 for SAM), and the image-sized head splits and transposes are gone.
Values and the output projection are moved to the token side the same way (attention rows
sum to one, so a value bias passes through unchanged).

The results equal ``Attention.forward`` up to float rounding (about 1e-6). Both functions
take the ``Attention`` module whose weights they use, so the state dict is SAM's own.
A side given at batch 1 broadcasts over the other's batch (the decoder's shared first-block
image keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from segment_anything.modeling.transformer import Attention
from torch import Tensor, nn


def _head_weights(linear: nn.Linear, heads: int) -> tuple[Tensor, Tensor]:
    """A projection's weight ``D×C`` as ``heads×d×C`` and its bias ``D`` as ``heads×d``."""
    d = linear.weight.shape[0] // heads
    return linear.weight.reshape(heads, d, -1), linear.bias.reshape(heads, d)


def attend_tokens_to_image(attn: Attention, q: Tensor, k: Tensor, v: Tensor,
                           weigh: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """``attn(q, k, v)`` with token queries ``q`` ``B×T×C`` over image keys and values ``k``, ``v`` ``B×N×C``.

    ``weigh`` turns the scaled logits ``B×heads×T×N`` into attention probabilities (default: the
    softmax over the image; PerSAM's re-weighting is ``guided.guided_probabilities``). Returns ``B×T×C``.
    """
    heads = attn.num_heads
    qh = attn._separate_heads(attn.q_proj(q), heads)  # B×H×T×d
    batch, _, tokens, d = qh.shape
    w_k, b_k = _head_weights(attn.k_proj, heads)
    q_image = (qh @ w_k).reshape(batch, heads * tokens, -1)  # B×(H·T)×C
    offset = (qh * b_k[:, None, :]).sum(-1)  # B×H×T: constant along the image axis
    logits = (q_image @ k.transpose(1, 2)).reshape(batch, heads, tokens, -1) + offset[..., None]
    logits = logits / math.sqrt(d)
    probs = weigh(logits) if weigh is not None else logits.softmax(dim=-1)
    pooled = (probs.reshape(batch, heads * tokens, -1) @ v).reshape(batch, heads, tokens, -1)  # B×H×T×C
    w_v, b_v = _head_weights(attn.v_proj, heads)
    out = pooled @ w_v.transpose(1, 2) + b_v[:, None, :]  # B×H×T×d
    return attn.out_proj(attn._recombine_heads(out))


def attend_image_to_tokens(attn: Attention, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``attn(q, k, v)`` with image queries ``q`` ``B×N×C`` over token keys and values ``k``, ``v`` ``B×T×C``.

    Returns ``B×N×C``.
    """
    heads = attn.num_heads
    kh = attn._separate_heads(attn.k_proj(k), heads)  # B×H×T×d
    vh = attn._separate_heads(attn.v_proj(v), heads)
    batch, _, tokens, d = kh.shape
    w_q, b_q = _head_weights(attn.q_proj, heads)
    k_image = (kh @ w_q).reshape(batch, heads * tokens, -1)  # B×(H·T)×C
    offset = (kh * b_q[:, None, :]).sum(-1).reshape(batch, 1, heads * tokens)
    logits = (q @ k_image.transpose(1, 2) + offset) / math.sqrt(d)  # B×N×(H·T)
    probs = logits.reshape(batch, -1, heads, tokens).softmax(dim=-1)
    w_out = attn.out_proj.weight.reshape(-1, heads, d).permute(1, 2, 0)  # H×d×C
    v_out = (vh @ w_out).reshape(batch, heads * tokens, -1)  # B×(H·T)×C
    return probs.reshape(batch, -1, heads * tokens) @ v_out + attn.out_proj.bias
