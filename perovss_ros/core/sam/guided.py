"""PerSAM guidance inside SAM's mask decoder, by subclassing segment_anything (no fork).

Two additions, both per prompt set and both switchable:

* target-guided attention: in the token-to-image cross-attention of every
  two-way block (not the final attention), the usual attention probabilities
  ``P = softmax(q·kᵀ/√d)`` are re-weighted as ``softmax(P + bias)``, ``bias``
  being the sigmoid of the standardised confidence map on the grid (``B×h·w``);
* target-semantic prompting: the target embedding ``t`` (``B×C``) is added to all
  decoder tokens before each two-way block and to the final attention's queries,
  exactly as PerSAM's reference code computes it (see below).

With no guidance every module calls its segment_anything parent, so the output
is exactly vanilla SAM. The subclasses keep the parents' parameter names, so
official state dicts load unchanged.

PerSAM's reference code adds the target embedding in place (``queries +=``)
while ``queries`` still aliases the token tensor, and that tensor is also every
layer's query positional encoding. So the tokens' encoding becomes ``tokens + t``
in every layer and in the final attention, whose queries get ``t`` twice
(``queries + (tokens + t) + t``). The paper's numbers come from that computation,
so it is the one done here, written out without the aliasing.

With guidance, the cross-attentions between tokens and image are computed without projecting
the image tokens (``few_token_attention``): the same numbers to float rounding, about a third
less work per decode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from segment_anything.modeling import MaskDecoder, TwoWayTransformer
from segment_anything.modeling.transformer import Attention, TwoWayAttentionBlock
from torch import Tensor

from perovss_ros.core.sam.few_token_attention import attend_image_to_tokens, attend_tokens_to_image


def guided_probabilities(attn_logits: Tensor, bias: Tensor, bias_on: Tensor | None = None) -> Tensor:
    """PerSAM's re-weighting ``softmax(softmax(logits) + bias)`` over the last axis.

    ``attn_logits`` is ``B×heads×T×N`` (scaled q·kᵀ), ``bias`` ``B×N``. ``bias_on``
    (``B`` bool) limits the re-weighting to some batch rows; the others keep the
    plain softmax. Returns ``B×heads×T×N`` probabilities.
    """
    probs = torch.softmax(attn_logits, dim=-1)
    guided = torch.softmax(probs + bias[:, None, None, :], dim=-1)
    if bias_on is None:
        return guided
    return torch.where(bias_on[:, None, None, None], guided, probs)


def _weighing(bias: Tensor | None, bias_on: Tensor | None) -> Callable[[Tensor], Tensor] | None:
    """The ``weigh`` of ``attend_tokens_to_image`` for a PerSAM ``bias`` (None: the plain softmax)."""
    if bias is None:
        return None
    return lambda logits: guided_probabilities(logits, bias, bias_on)


class GuidedAttention(Attention):
    """segment_anything ``Attention`` with an optional PerSAM attention bias over the keys."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None,
                bias_on: Tensor | None = None) -> Tensor:
        """``q`` ``B×Tq×C``, ``k``/``v`` ``B×Tk×C``, ``bias`` ``B×Tk`` or None → ``B×Tq×C``."""
        if bias is None:
            return super().forward(q, k, v)
        return attend_tokens_to_image(self, q, k, v, _weighing(bias, bias_on))


class GuidedTwoWayAttentionBlock(TwoWayAttentionBlock):
    """Two-way block whose token-to-image cross-attention accepts the PerSAM bias."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain = self.cross_attn_token_to_image
        # Same constructor arguments, same parameter names: official weights load unchanged.
        self.cross_attn_token_to_image = GuidedAttention(
            plain.embedding_dim, plain.num_heads, downsample_rate=plain.embedding_dim // plain.internal_dim
        )

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor,
                bias: Tensor | None = None, bias_on: Tensor | None = None,
                few_tokens: bool = False) -> tuple[Tensor, Tensor]:
        """Tokens ``B×T×C``, image keys ``B×N×C`` (+ their encodings), bias ``B×N`` → (tokens, keys).

        With a bias, or with ``few_tokens``, both cross-attentions are computed without
        projecting the image tokens (``few_token_attention``; equal to rounding). With neither,
        this is segment_anything's block exactly.
        """
        if bias is None and not few_tokens:
            return super().forward(queries, keys, query_pe, key_pe)
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe
        attended = attend_tokens_to_image(self.cross_attn_token_to_image, q, k, keys, _weighing(bias, bias_on))
        queries = self.norm2(queries + attended)
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        k = keys + key_pe
        keys = self.norm4(keys + attend_image_to_tokens(self.cross_attn_image_to_token, q=k, k=q, v=queries))
        return queries, keys


class GuidedTwoWayTransformer(TwoWayTransformer):
    """SAM's two-way transformer with PerSAM's attention bias and target-semantic prompting."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 activation: type[torch.nn.Module] = torch.nn.ReLU,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__(depth, embedding_dim, num_heads, mlp_dim, activation, attention_downsample_rate)
        self.layers = torch.nn.ModuleList(
            GuidedTwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                activation=activation,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )

    def forward(self, image_embedding: Tensor, image_pe: Tensor, point_embedding: Tensor,
                bias: Tensor | None = None, bias_on: Tensor | None = None,
                target_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Image ``B×C×h×w`` (+ encoding), tokens ``B×T×C``; bias ``B×h·w``, target ``B×C`` or None.

        Returns the processed tokens ``B×T×C`` and image keys ``B×h·w×C``.
        """
        if bias is None and target_embedding is None:
            return super().forward(image_embedding, image_pe, point_embedding)
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        image_pe = image_pe.flatten(2).permute(0, 2, 1)
        target = None if target_embedding is None else target_embedding[:, None, :]

        # The reference code's in-place add before the first block also lands in the encoding.
        query_pe = point_embedding if target is None else point_embedding + target
        queries = query_pe
        for i, layer in enumerate(self.layers):
            if target is not None and i > 0:
                queries = queries + target
            queries, keys = layer(queries=queries, keys=keys, query_pe=query_pe, key_pe=image_pe,
                                  bias=bias, bias_on=bias_on, few_tokens=True)

        q = queries + query_pe
        if target is not None:
            q = q + target
        attn_out = attend_tokens_to_image(self.final_attn_token_to_image, q, keys + image_pe, keys)
        queries = self.norm_final_attn(queries + attn_out)
        return queries, keys


class GuidedMaskDecoder(MaskDecoder):
    """SAM's mask decoder forwarding PerSAM guidance to its transformer (``GuidedTwoWayTransformer``)."""

    def forward(self, image_embeddings: Tensor, image_pe: Tensor, sparse_prompt_embeddings: Tensor,
                dense_prompt_embeddings: Tensor, multimask_output: bool, bias: Tensor | None = None,
                bias_on: Tensor | None = None,
                target_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """As ``MaskDecoder.forward`` (``B×M×h'×w'`` logits, ``B×M`` IoU) plus optional guidance.

        ``bias`` ``B×h·w``, ``bias_on`` ``B`` bool (rows that use the bias),
        ``target_embedding`` ``B×C`` (zero rows for sets without one).
        """
        if bias is None and target_embedding is None:
            return super().forward(image_embeddings, image_pe, sparse_prompt_embeddings,
                                   dense_prompt_embeddings, multimask_output)
        masks, iou_pred = self.predict_masks_guided(image_embeddings, image_pe, sparse_prompt_embeddings,
                                                    dense_prompt_embeddings, bias, bias_on, target_embedding)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice], iou_pred[:, mask_slice]

    def predict_masks_guided(self, image_embeddings: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor,
                             bias: Tensor | None = None, bias_on: Tensor | None = None,
                             target_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``MaskDecoder.predict_masks`` with guidance: all ``num_mask_tokens`` masks ``B×4×4h×4w`` and IoU ``B×4``.

        The one image embedding ``1×C×h×w`` (and its encoding) is broadcast to
        the B prompt sets instead of copied, which gives the same numbers and
        keeps the batch size dynamic when traced for ONNX. When ``dense`` is
        ``1×C×h×w`` too (no set has a mask input, so every set's dense embedding
        is SAM's no-mask embedding), the image keys stay at batch 1 into the
        first two-way block and are broadcast, not copied, over the B sets; they
        become ``B×…`` when that block adds its per-set image-to-token output.
        """
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse), dim=1)
        src = image_embeddings + dense
        _, c, h, w = image_embeddings.shape

        hs, src = self.transformer(src, image_pe, tokens, bias=bias, bias_on=bias_on,
                                   target_embedding=target_embedding)
        mask_tokens_out = hs[:, 1 : (1 + self.num_mask_tokens), :]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(-1, c, h, w))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        _, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(-1, c, h * w)).reshape(-1, self.num_mask_tokens, h, w)
        return masks, self.iou_prediction_head(hs[:, 0, :])


def guided_decoder_from(decoder: MaskDecoder) -> GuidedMaskDecoder:
    """A ``GuidedMaskDecoder`` with ``decoder``'s architecture and exactly its weights (strict load)."""
    transformer = decoder.transformer
    first = transformer.layers[0]
    guided_transformer = GuidedTwoWayTransformer(
        depth=transformer.depth,
        embedding_dim=transformer.embedding_dim,
        num_heads=transformer.num_heads,
        mlp_dim=transformer.mlp_dim,
        activation=type(first.mlp.act),
        attention_downsample_rate=transformer.embedding_dim // first.cross_attn_token_to_image.internal_dim,
    )
    guided = GuidedMaskDecoder(
        transformer_dim=decoder.transformer_dim,
        transformer=guided_transformer,
        num_multimask_outputs=decoder.num_multimask_outputs,
        activation=type(decoder.output_upscaling[2]),
        iou_head_depth=decoder.iou_prediction_head.num_layers,
        iou_head_hidden_dim=decoder.iou_prediction_head.layers[0].out_features,
    )
    guided.load_state_dict(decoder.state_dict(), strict=True)
    ref = next(decoder.parameters())
    return guided.to(device=ref.device, dtype=ref.dtype).train(decoder.training)
