"""A bundle's classes: the `label` parameters, one-hot rows, and the class-mean latents (Larsen et al. Sec. 5).

Two ways to ask for a class, by what the bundle holds:

- a conditional bundle (``num_classes`` > 0): the one-hot label goes to the decoder (and encoder);
- an unconditional bundle trained on labelled data carries the per-class mean posterior latents:
  a class's samples are z_p shifted to its mean, and an attribute vector is a difference of means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Query

from model_core.bundle import Bundle, read_class_means
from model_core.images import one_hot
from service.errors import InvalidParameter

Method = Literal["conditional", "class-mean", "class-prior"]  # class-prior: service/priors.py
LABEL_HEADER = "X-Label-Method"
MAX_LABEL_LENGTH = 64  # the longest class name a manifest may hold


def class_query(example: str, description: str = "a class, by name or index (see /model's classes)") -> Any:
    """The query parameter of a class (bounded like the manifest's names), documented with ``example``."""
    return Query(max_length=MAX_LABEL_LENGTH, description=description, examples=[example])


Label = Annotated[str | None, class_query("7")]  # the optional `label` of the class-aware routes


@dataclass(frozen=True)
class Classes:
    """The class names in label order, whether the networks take labels, and the mean latents (K, Z)."""

    names: tuple[str, ...] = ()
    conditional: bool = False
    means: np.ndarray | None = None

    @classmethod
    def of(cls, bundle: Bundle) -> Classes:
        """Read from a verified bundle (the class means file is checked against the manifest)."""
        manifest = bundle.manifest
        return cls(manifest.class_names, manifest.num_classes > 0, read_class_means(bundle))

    @property
    def method(self) -> Method | None:
        """How /sample?label= works on this bundle; None when it cannot."""
        if self.conditional:
            return "conditional"
        return "class-mean" if self.means is not None else None

    def index(self, value: str, what: str = "label") -> int:
        """A class given by name or by index; 422 naming the classes otherwise."""
        if value in self.names:
            return self.names.index(value)
        if value.strip().isdigit() and int(value) < len(self.names):
            return int(value)
        shown = ", ".join(self.names[:20]) + (", ..." if len(self.names) > 20 else "")
        raise InvalidParameter(
            f"{what} {value!r} is no class of this model: give a name or an index 0..{len(self.names) - 1} ({shown})"
        )

    def onehot(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """(N, K) float32 one-hot rows for class indices."""
        return one_hot(indices, len(self.names))

    def require_method(self, what: str = "label") -> Method:
        """The sampling method, or 422 saying why this bundle has none."""
        if self.method is None:
            why = "it was trained on unlabelled data" if not self.names else "it carries no class means"
            raise InvalidParameter(
                f"{what}: this model has no classes to sample ({why}); train with labelled data or --conditional"
            )
        return self.method

    def network_labels(self, value: str | None, n: int, what: str = "label") -> np.ndarray | None:
        """One-hot labels (n, K) for the encoder or decoder of a conditional bundle, None for another.

        A conditional bundle needs a label (422 without one); an unconditional one takes none (422).
        """
        if not self.conditional:
            if value is not None:
                raise InvalidParameter(f"{what}: this model is unconditional and takes no label")
            return None
        if value is None:
            raise InvalidParameter(f"{what} is required: this model is class-conditional ({', '.join(self.names)})")
        return self.onehot([self.index(value, what)] * n)
