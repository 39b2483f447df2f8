"""The backend interface."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple  # ints, or None/str for dynamic dimensions
    dtype: np.dtype

    def __str__(self) -> str:
        dims = ",".join("?" if not isinstance(d, int) or d < 0 else str(d) for d in self.shape)
        return f"{self.name} [{dims}] {np.dtype(self.dtype).name}"


class Backend:
    """Runs a model. `run` takes one input array with a leading batch dimension of at most
    `max_batch` (None: any) and returns the outputs by name, each with the same batch dimension."""

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    max_batch: int | None = None
    name = "backend"

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        ins = "; ".join(map(str, self.inputs))
        outs = "; ".join(map(str, self.outputs))
        return f"inputs: {ins} | outputs: {outs}"
