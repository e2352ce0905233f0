"""The category tree as arrays: roll leaf probabilities up to ancestors and back off to the deepest confident node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Rollup:
    """A model's class probabilities summed up the tree: an ancestor's probability is the sum of its descendants'
    (and its own, when it is a class itself).

    Only the nodes that receive any probability (the classes and their ancestors) get a column, and the class ->
    node matrix is sparse (a class has one entry per level): a model of 8,000 leaves over a 10,000-node taxonomy
    would otherwise multiply by a dense 8,000 x 10,000 matrix for every chunk it scores."""

    nodes: npt.NDArray[np.int64]  # the hierarchy's node index of each column
    matrix: Any  # scipy.sparse.csr_matrix (n_classes, len(nodes)): 1 where the column is the class or above it
    depths: Floats  # of each column's node (a root is 1)

    @classmethod
    def build(cls, hierarchy: Hierarchy, class_labels: list[str]) -> Rollup:
        from scipy.sparse import csr_matrix

        index = hierarchy.index()
        column: dict[int, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        for c, label in enumerate(class_labels):
            for node in hierarchy.ancestors(index[label]):
                rows.append(c)
                columns.append(column.setdefault(node, len(column)))
        nodes = np.fromiter(column, dtype=np.int64, count=len(column))
        matrix = csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=(len(class_labels), len(nodes))
        )
        depths = np.array([hierarchy.depth(int(node)) for node in nodes], dtype=np.float32)
        return cls(nodes=nodes, matrix=matrix, depths=depths)

    def node_probabilities(self, probabilities: Floats) -> Floats:
        """(n, len(nodes)): each row's probability of every column's node."""
        return np.asarray(probabilities @ self.matrix, dtype=np.float32)

    def backoff(self, probabilities: Floats, threshold: float) -> tuple[npt.NDArray[np.int64], Floats]:
        """For each row of class probabilities, the deepest node whose rolled-up probability reaches the threshold
        (-1 when even no root does) and that probability. Deeper wins; between nodes of one depth, the more
        probable."""
        nodes = self.node_probabilities(probabilities)
        # Rank by depth, then probability: depth dominates because probabilities are < 1.
        score = np.where(nodes >= threshold, self.depths[None, :] + nodes, -1.0)
        best = score.argmax(axis=1)
        rows = np.arange(len(best))
        found = score[rows, best] >= 0
        chosen = np.where(found, self.nodes[best], -1).astype(np.int64)
        return chosen, np.where(found, nodes[rows, best], 0.0).astype(np.float32)


def margin_and_entropy(probabilities: Floats) -> tuple[Floats, Floats]:
    """Margin between the two most probable classes (small: the model hesitates) and the entropy in nats."""
    if probabilities.shape[1] == 1:
        return np.ones(probabilities.shape[0], dtype=np.float32), np.zeros(probabilities.shape[0], dtype=np.float32)
    top2 = -np.partition(-probabilities, 1, axis=1)[:, :2]
    margin = (top2[:, 0] - top2[:, 1]).astype(np.float32)
    clipped = np.clip(probabilities, 1e-12, 1.0)
    entropy = (-(clipped * np.log(clipped)).sum(axis=1)).astype(np.float32)
    return margin, entropy
