"""The category tree as arrays: roll leaf probabilities up to ancestors and back off to the deepest confident node."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Hierarchy:
    """Nodes by index. `labels[i]` is a node's label (the category's id as a string) and `parents[i]` the index of
    its parent (-1 for a root). Labels the model predicts are a subset of the nodes."""

    labels: list[str]
    parents: list[int]

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.parents):
            raise ValueError("labels and parents differ in length")

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str | None]]) -> Hierarchy:
        """(label, parent label or None), in any order."""
        index = {label: i for i, (label, _) in enumerate(pairs)}
        parents = [index[parent] if parent is not None and parent in index else -1 for _, parent in pairs]
        return cls(labels=[label for label, _ in pairs], parents=parents)

    def index(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def ancestors(self, node: int) -> list[int]:
        """The node itself, then its parent, up to the root."""
        chain = []
        while node != -1:
            chain.append(node)
            node = self.parents[node]
        return chain

    def depth(self, node: int) -> int:
        return len(self.ancestors(node))

    def rollup_matrix(self, class_labels: list[str]) -> npt.NDArray[np.float32]:
        """(n_classes, n_nodes): class c contributes its probability to itself and to every ancestor."""
        index = self.index()
        matrix = np.zeros((len(class_labels), len(self.labels)), dtype=np.float32)
        for c, label in enumerate(class_labels):
            for node in self.ancestors(index[label]):
                matrix[c, node] = 1.0
        return matrix


def rollup(probabilities: Floats, matrix: npt.NDArray[np.float32]) -> Floats:
    """An ancestor's probability is the sum of its descendants' (and its own, when it is a class itself)."""
    return np.asarray(probabilities @ matrix, dtype=np.float32)


def backoff(node_probabilities: Floats, hierarchy: Hierarchy, threshold: float) -> tuple[list[int], Floats]:
    """For each row, the deepest node whose rolled-up probability reaches the threshold (-1 when even no root does),
    and that probability. Deeper wins; between nodes of one depth, the more probable."""
    depths = np.array([hierarchy.depth(i) for i in range(len(hierarchy.labels))], dtype=np.float32)
    # Rank by depth, then probability: depth dominates because probabilities are < 1.
    score = np.where(node_probabilities >= threshold, depths[None, :] + node_probabilities, -1.0)
    best = score.argmax(axis=1)
    chosen = [int(b) if score[row, b] >= 0 else -1 for row, b in enumerate(best)]
    confidence = np.array(
        [node_probabilities[row, b] if b >= 0 else 0.0 for row, b in enumerate(chosen)], dtype=np.float32
    )
    return chosen, confidence


def margin_and_entropy(probabilities: Floats) -> tuple[Floats, Floats]:
    """Margin between the two most probable classes (small: the model hesitates) and the entropy in nats."""
    if probabilities.shape[1] == 1:
        return np.ones(probabilities.shape[0], dtype=np.float32), np.zeros(probabilities.shape[0], dtype=np.float32)
    top2 = -np.partition(-probabilities, 1, axis=1)[:, :2]
    margin = (top2[:, 0] - top2[:, 1]).astype(np.float32)
    clipped = np.clip(probabilities, 1e-12, 1.0)
    entropy = (-(clipped * np.log(clipped)).sum(axis=1)).astype(np.float32)
    return margin, entropy
