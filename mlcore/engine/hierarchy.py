"""The category tree as arrays: roll leaf probabilities up to ancestors and back off to the deepest confident node."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
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
    # For backoff() over the top-k only: the classes in an order where each column's classes are contiguous (tree
    # order), each column's [start, end) in it, and each class's columns from itself up (-1 padded).
    order: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    class_columns: npt.NDArray[np.int64]

    @classmethod
    def build(cls, hierarchy: Hierarchy, class_labels: list[str]) -> Rollup:
        from scipy.sparse import csr_matrix

        index = hierarchy.index()
        column: dict[int, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        chains: list[list[int]] = []
        for c, label in enumerate(class_labels):
            chain = []
            for node in hierarchy.ancestors(index[label]):
                rows.append(c)
                chain.append(column.setdefault(node, len(column)))
            columns.extend(chain)
            chains.append(chain)
        nodes = np.fromiter(column, dtype=np.int64, count=len(column))
        matrix = csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=(len(class_labels), len(nodes))
        )
        depths = np.array([hierarchy.depth(int(node)) for node in nodes], dtype=np.float32)
        # Sorting the classes by their root-to-class path of column numbers puts every subtree's classes together.
        order = np.array(sorted(range(len(class_labels)), key=lambda c: chains[c][::-1]), dtype=np.int64)
        starts = np.full(len(nodes), len(class_labels), dtype=np.int64)
        ends = np.zeros(len(nodes), dtype=np.int64)
        for position, c in enumerate(order.tolist()):
            for col in chains[c]:
                starts[col] = min(int(starts[col]), position)
                ends[col] = max(int(ends[col]), position + 1)
        class_columns = np.full((len(class_labels), max((len(ch) for ch in chains), default=1)), -1, dtype=np.int64)
        for c, chain in enumerate(chains):
            class_columns[c, : len(chain)] = chain
        return cls(
            nodes=nodes,
            matrix=matrix,
            depths=depths,
            order=order,
            starts=starts,
            ends=ends,
            class_columns=class_columns,
        )

    def node_probabilities(self, probabilities: Floats) -> Floats:
        """(n, len(nodes)): each row's probability of every column's node."""
        return np.asarray(probabilities @ self.matrix, dtype=np.float32)

    @property
    def positions(self) -> npt.NDArray[np.int64]:
        """Each class's position in `order` (the inverse permutation)."""
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(len(self.order))
        return inverse

    def backoff(
        self, probabilities: Floats, threshold: float, top: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.int64], Floats]:
        """For each row of class probabilities, the deepest node whose rolled-up probability reaches the threshold
        (-1 when even no root does) and that probability. Deeper wins; between nodes of one depth, the more
        probable. `top` (n, k): each row's k most probable classes, which makes it cheaper (backoff_ordered)."""
        running = np.zeros((len(probabilities), len(self.order) + 1), dtype=np.float64)
        np.cumsum(probabilities[:, self.order], axis=1, out=running[:, 1:])
        return self.backoff_ordered(running, None if top is None else self.positions[top], threshold)

    def backoff_ordered(
        self, running: npt.NDArray[Any], top_positions: npt.NDArray[np.int64] | None, threshold: float
    ) -> tuple[npt.NDArray[np.int64], Floats]:
        """backoff() from each row's running sums over its classes in `order` ((n, classes + 1), first column 0;
        any positive scale: the last column is the row's total). A column's probability is then a difference of two
        running sums, whatever the size of its subtree.

        With `top_positions` (n, k: positions in `order` of each row's k most probable classes, best first), only
        some columns are candidates. A node that reaches the threshold holds a class of any set of classes that
        weighs more than 1 - threshold together (else the node and the set would add up to more than the whole).
        So where the best class alone weighs that much (most rows of a catalog), the candidates are its ancestors;
        where the top-k together do, theirs; the other rows (rare) try every column. Exact in every case."""
        n = len(running)
        chosen = np.full(n, -1, dtype=np.int64)
        confidence = np.zeros(n, dtype=np.float32)
        rest = np.arange(n)
        if top_positions is not None and top_positions.shape[1]:
            at_rows = np.arange(n)[:, None]
            top_mass = running[at_rows, top_positions + 1] - running[at_rows, top_positions]
            # Strictly more than 1 - threshold, by the margin _deepest allows a sum below the threshold.
            slack = (1.0 - threshold + 1e-6) * running[:, -1]
            alone = top_mass[:, 0] > slack
            together = ~alone & (top_mass.sum(axis=1) > slack)
            for near, width in ((np.flatnonzero(alone), 1), (np.flatnonzero(together), top_positions.shape[1])):
                if not len(near):
                    continue
                # Rows are gathered by index, never copied: a chunk's running sums are tens of megabytes.
                candidates = self.class_columns[self.order[top_positions[near, :width]]].reshape(len(near), -1)
                valid = candidates >= 0
                safe = np.where(valid, candidates, 0)
                at = near[:, None]
                mass = (running[at, self.ends[safe]] - running[at, self.starts[safe]]) / running[at, -1]
                chosen[near], confidence[near] = self._deepest(mass, safe, valid, threshold)
            rest = np.flatnonzero(~alone & ~together)
        if len(rest):
            # Every column: the class values back from the running sums, rolled up by the sparse class -> node
            # matrix (rows in `order`), as node_probabilities() does.
            values = np.diff(running[rest], axis=1)
            mass = np.asarray((values @ self._ordered_matrix) / running[rest, -1:], dtype=np.float64)
            columns = np.broadcast_to(np.arange(len(self.nodes), dtype=np.int64), mass.shape)
            chosen[rest], confidence[rest] = self._deepest(mass, columns, None, threshold)
        return chosen, confidence

    def _deepest(
        self,
        mass: npt.NDArray[Any],
        columns: npt.NDArray[np.int64],
        valid: npt.NDArray[np.bool_] | None,
        threshold: float,
    ) -> tuple[npt.NDArray[np.int64], Floats]:
        """Per row, among candidate columns with their probabilities, the deepest reaching the threshold."""
        if not len(mass):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # Rank by depth, then probability: depth dominates because probabilities are < 1. A sum that should equal
        # the threshold may land a rounding error below it (0.3 + 0.2 + 0.2 over a total of 1.0000001).
        reached = mass >= threshold - 1e-6
        if valid is not None:
            reached &= valid
        score = np.where(reached, self.depths[columns] + mass, -1.0)
        best = score.argmax(axis=1)
        rows = np.arange(len(mass))
        found = score[rows, best] >= 0
        return (
            np.where(found, self.nodes[columns[rows, best]], -1).astype(np.int64),
            np.where(found, mass[rows, best], 0.0).astype(np.float32),
        )

    @cached_property
    def _ordered_matrix(self) -> Any:
        return self.matrix[self.order]


def margin_and_entropy(probabilities: Floats) -> tuple[Floats, Floats]:
    """Margin between the two most probable classes (small: the model hesitates) and the entropy in nats."""
    if probabilities.shape[1] == 1:
        return np.ones(probabilities.shape[0], dtype=np.float32), np.zeros(probabilities.shape[0], dtype=np.float32)
    top2 = -np.partition(-probabilities, 1, axis=1)[:, :2]
    margin = (top2[:, 0] - top2[:, 1]).astype(np.float32)
    clipped = np.clip(probabilities, 1e-12, 1.0)
    entropy = (-(clipped * np.log(clipped)).sum(axis=1)).astype(np.float32)
    return margin, entropy
