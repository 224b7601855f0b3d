"""A taught concept: its shots, matching vectors, presence threshold and PerSAM-F weights."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.identity import IdentityFit, IdentityModel
from perovss_ros.core.types import ConceptInfo

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid concept name, else raise InvalidInputError saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError("concept name must be a non-empty string")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid concept name {name!r}: use 1-64 letters, digits, '_', '.', '-', starting with a "
            "letter or digit (no path separators)"
        )
    return name


@dataclass
class Shot:
    """One reference shot: ``image`` H×W×3 uint8 RGB and its ``mask`` H×W bool."""

    image: np.ndarray
    mask: np.ndarray


@dataclass
class Concept:
    """Everything the pipeline keeps about one concept (treated as immutable once built).

    ``local``: per-shot masked local features, each ``n_i×C`` float32.
    ``targets``: ``S×C`` L2-normalised per-shot target vectors used for matching.
    ``embedding``: ``C`` un-normalised mean target feature (semantic prompting).
    ``scale_weights``: PerSAM-F weights ``[3]`` or None.
    ``identity``: what tells the concept from look-alikes (``core/identity.py``), or None when the
    pipeline runs without it; ``identity_fit``: how it was fitted (None: unknown, e.g. read from an
    older store), which decides whether a stored one can be used (``Pipeline.load_store``).
    ``category``: the word of its kind (``"mug"`` for ``my_mug``), ``""`` unknown.
    """

    name: str
    instance_id: int
    model_id: str
    created: float
    shots: list[Shot]
    local: list[torch.Tensor]
    targets: torch.Tensor
    embedding: torch.Tensor
    presence_threshold: float
    scale_weights: torch.Tensor | None = None
    calibration: dict[str, float] = field(default_factory=dict)
    identity: IdentityModel | None = None
    category: str = ""  # its vocabulary word ("mug" for my_mug), "" when unknown
    identity_fit: IdentityFit | None = None

    @property
    def presence_k(self) -> int:
        """Grid cells the presence score averages (from the smallest reference object)."""
        from perovss_ros.core.presence import top_k_for

        return top_k_for(min(int(x.shape[0]) for x in self.local))

    @property
    def num_shots(self) -> int:
        """Number of reference shots."""
        return len(self.shots)

    def info(self) -> ConceptInfo:
        """Public summary."""
        return ConceptInfo(
            name=self.name,
            num_shots=self.num_shots,
            fine_tuned=self.scale_weights is not None,
            model=self.model_id,
            created=self.created,
            presence_threshold=float(self.identity.threshold if self.identity is not None
                                     else self.presence_threshold),
            instance_id=self.instance_id,
            category=self.category,
        )
