"""TinyViT image encoder with SAM's neck: MobileSAM's light encoder (``vit_t``), written for perovss.

Architecture (MobileSAM, Zhang et al. 2023, on TinyViT, Wu et al. 2022): a
convolutional stem (stride 4), one stage of MBConv blocks, then three stages of
windowed self-attention blocks with a learnt relative-position bias, each stage
but the last ending in a patch-merging convolution. MobileSAM's changes to
TinyViT: the last merge keeps the resolution (stride 1), so a 1024 px input
gives a 64×64 grid like SAM's ViTs, and SAM's neck (1×1 conv, LayerNorm2d, 3×3
conv, LayerNorm2d) maps the last stage to 256 channels.

Module and parameter names follow the official checkpoint (``mobile_sam.pt``,
keys ``image_encoder.*``), so it loads strictly; the classifier ``norm_head`` /
``head`` are kept only for that reason and are never run. Tensors flow as
``B×H×W×C`` (channels last) through the attention stages, which makes window
partitioning a reshape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn


@dataclass(frozen=True)
class TinyVitConfig:
    """Hyper-parameters of one TinyViT encoder; the defaults are MobileSAM's ``vit_t`` (TinyViT-5M)."""

    img_size: int = 1024
    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    merge_strides: tuple[int, ...] = (2, 2, 1)
    """Stride of the patch merge after stages 0..n-2 (MobileSAM keeps the last at 1)."""
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    out_chans: int = 256
    num_classes: int = 1000
    """Width of TinyViT's classifier head, present in the checkpoint but unused."""


class ConvBN(nn.Sequential):
    """Bias-free convolution followed by BatchNorm (children ``c`` and ``bn``, as in the checkpoint)."""

    def __init__(self, in_chans: int, out_chans: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(in_chans, out_chans, kernel, stride, kernel // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_chans))


class PatchEmbed(nn.Module):
    """Stem: two stride-2 3×3 ConvBNs with a GELU between: ``B×3×S×S`` → ``B×C×S/4×S/4``."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        half = embed_dim // 2
        self.seq = nn.Sequential(ConvBN(in_chans, half, 3, 2), nn.GELU(), ConvBN(half, embed_dim, 3, 2))

    def forward(self, x: Tensor) -> Tensor:
        """``B×3×S×S`` → ``B×C×S/4×S/4``."""
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand, 3×3 depthwise, 1×1 project, residual, GELU (``B×C×H×W``)."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``B×C×H×W`` → same shape."""
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(x + self.conv3(y))


class PatchMerging(nn.Module):
    """1×1 conv, depthwise 3×3 conv with ``stride``, 1×1 conv (GELU after the first two): ``B×H×W×C`` out."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``B×C×H×W`` → ``B×H'×W'×C'`` (channels last, for the attention stage that follows)."""
        x = self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        return x.permute(0, 2, 3, 1)


def window_bias_index(window: int) -> Tensor:
    """``w²×w²`` long: column of the bias table for each (query, key) pair of a ``w×w`` window.

    Tokens are numbered row-major; the table has one column per offset
    ``(|dy|, |dx|)``, numbered ``|dy|·w + |dx|`` (the order in which TinyViT
    meets them, so the checkpoint's ``attention_biases`` fit).
    """
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    return (ys[:, None] - ys[None, :]).abs() * window + (xs[:, None] - xs[None, :]).abs()


class WindowAttention(nn.Module):
    """Pre-norm multi-head self-attention within one window, with a learnt relative-position bias.

    ``qkv`` packs q, k and v *per head* (``[q_h, k_h, v_h]`` for each head in
    turn), as the checkpoint does.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("bias_index", window_bias_index(window), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``B×N×C`` tokens of B windows (N = w², row-major) → ``B×N×C``."""
        batch, tokens, dim = x.shape
        qkv = self.qkv(self.norm(x)).reshape(batch, tokens, self.num_heads, 3 * self.head_dim).transpose(1, 2)
        q, k, v = qkv.split(self.head_dim, dim=-1)
        logits = (q @ k.transpose(-2, -1)) * self.head_dim ** -0.5 + self.attention_biases[:, self.bias_index]
        out = logits.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """Pre-norm two-layer MLP with GELU (``B×…×C``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``B×…×C`` → same shape."""
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TinyVitBlock(nn.Module):
    """Windowed attention (residual), depthwise local conv, MLP (residual) on ``B×H×W×C``."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, local_conv_size: int) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, local_conv_size, groups=dim)

    def _attend(self, x: Tensor) -> Tensor:
        """Attention in non-overlapping ``w×w`` windows of ``B×H×W×C``.

        The grid is zero-padded bottom/right to whole windows and the padding
        takes part in attention unmasked, as in TinyViT (the checkpoint was
        trained so).
        """
        batch, height, width, dim = x.shape
        w = self.window
        pad_h, pad_w = (-height) % w, (-width) % w
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        rows, cols = (height + pad_h) // w, (width + pad_w) // w
        windows = x.reshape(batch, rows, w, cols, w, dim).transpose(2, 3).reshape(-1, w * w, dim)
        out = self.attn(windows).reshape(batch, rows, cols, w, w, dim).transpose(2, 3)
        return out.reshape(batch, rows * w, cols * w, dim)[:, :height, :width]

    def forward(self, x: Tensor) -> Tensor:
        """``B×H×W×C`` → same shape."""
        x = x + self._attend(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks on ``B×C×H×W``, then a patch merge to ``B×H'×W'×C'``."""

    def __init__(self, dim: int, depth: int, expand_ratio: float, out_dim: int, stride: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim, stride)

    def forward(self, x: Tensor) -> Tensor:
        """``B×C×H×W`` → ``B×H'×W'×C'``."""
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class AttentionStage(nn.Module):
    """Stages 1..n-1: TinyViT blocks on ``B×H×W×C``, then (except the last stage) a patch merge."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: int, mlp_ratio: float, local_conv_size: int,
                 merge: tuple[int, int] | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyVitBlock(dim, num_heads, window, mlp_ratio, local_conv_size) for _ in range(depth)
        )
        self.downsample = None if merge is None else PatchMerging(dim, *merge)

    def forward(self, x: Tensor) -> Tensor:
        """``B×H×W×C`` → ``B×H'×W'×C'``."""
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x.permute(0, 3, 1, 2))
        return x


class TinyViT(nn.Module):
    """TinyViT + SAM neck: ``B×3×S×S`` normalised image → ``B×256×S/16×S/16`` embedding (S = ``img_size``)."""

    def __init__(self, config: TinyVitConfig | None = None) -> None:
        super().__init__()
        cfg = config or TinyVitConfig()
        stages = len(cfg.depths)
        if not (len(cfg.embed_dims) == len(cfg.num_heads) == len(cfg.window_sizes) == stages
                and len(cfg.merge_strides) == stages - 1):
            raise ValueError(f"TinyVitConfig lists of inconsistent lengths: {cfg}")
        self.config = cfg
        self.img_size = cfg.img_size
        dims = cfg.embed_dims
        self.patch_embed = PatchEmbed(3, dims[0])
        layers: list[nn.Module] = [
            ConvStage(dims[0], cfg.depths[0], cfg.mbconv_expand_ratio, dims[1], cfg.merge_strides[0])
        ]
        for i in range(1, stages):
            merge = (dims[i + 1], cfg.merge_strides[i]) if i < stages - 1 else None
            layers.append(AttentionStage(dims[i], cfg.depths[i], cfg.num_heads[i], cfg.window_sizes[i],
                                         cfg.mlp_ratio, cfg.local_conv_size, merge))
        self.layers = nn.ModuleList(layers)
        self.norm_head = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], cfg.num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``B×3×S×S`` float32 (``Sam.preprocess`` output) → ``B×256×S/16×S/16``."""
        x = self.layers[0](self.patch_embed(x))
        for layer in self.layers[1:]:
            x = layer(x)
        return self.neck(x.permute(0, 3, 1, 2))
