"""Zero-shot suggestions before any label exists: product embeddings against category embeddings, using the tree.

Plain cosine between a title and each full path under-uses the taxonomy: a path's embedding is dominated by its
first, broad words. A category is scored by its full path *and* by how well the product matches each node on the
way down, where a node is represented by the centroid of its whole subtree's names ("Telephony" is also every kind
of phone below it) and deeper nodes weigh more; and by its head noun. English names are head-final compounds:
"Freezer Shelves" are shelves, "SIM Cards" are cards. Without the head, a fridge freezer's title lands on Freezer
Shelves and an iPhone's on SIM Cards, because every word of the title matches the modifier; the head term asks
whether the product *is* the thing the category names.

On 2,000 shipped offers against all 8,251 leaves (bench/accuracy.py), top-5: path alone 0.378, + node names 0.440,
+ subtree centroids 0.477, + depth weights 0.484, + head nouns 0.733 (top-1 0.205 -> 0.427).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlcore.engine.batching import default_batch_tokens, tokenized_batches
from mlcore.engine.calibration import COSINE_TEMPERATURE
from mlcore.engine.device import pick_device, run_batches
from mlcore.engine.hierarchy import Hierarchy
from mlcore.engine.pooled import mean_pooled

Matrix = npt.NDArray[np.float32]
# Weight of the full-path similarity against the mean similarity to the path's nodes (the rest).
PATH_WEIGHT = 0.5
# Weight of the similarity to the category's head noun, added to the above (0.25: 0.682, 0.5: 0.733, 1.0: 0.719).
HEAD_WEIGHT = 0.5


def head_noun(name: str) -> str:
    """The last word of a category's name, before any comma-separated tail or parenthesis: what the category *is*
    ("Mobile & Smart Phones" -> "Phones", "Freezer Shelves" -> "Shelves")."""
    words = re.findall(r"[^\W_]+(?:-[^\W_]+)*", name.split(",")[-1].split("(")[0])
    return words[-1] if words else name


@dataclass(frozen=True)
class CategoryTexts:
    hierarchy: Hierarchy
    names: list[str]  # the node's own name, by node index
    paths: list[str]  # "A > B > C", by node index

    def fingerprint(self, model: str) -> str:
        digest = hashlib.sha256(f"v2:{model}".encode())  # v2: head nouns are cached too
        digest.update(json.dumps([self.hierarchy.labels, self.hierarchy.parents, self.names, self.paths]).encode())
        return digest.hexdigest()[:24]


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings (how all-MiniLM-L6-v2 was trained to be used)."""

    def __init__(self, folder: str | Path, *, device: str = "auto", max_length: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.device = pick_device(device)
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder, use_safetensors=True).to(self.device).eval()

    def embed(self, texts: list[str], *, batch_tokens: int | None = None) -> Matrix:
        output = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        tokens = batch_tokens or default_batch_tokens(self.device)

        def embed_batch(item: tuple[list[int], Any]) -> None:
            chunk, batch = item
            batch = batch.to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()
            output[chunk] = mean_pooled(hidden, batch["attention_mask"]).cpu().numpy()

        batches = tokenized_batches(self.tokenizer, texts, max_length=self.max_length, tokens=tokens)
        run_batches(embed_batch, batches, device=self.device)
        return output


class ZeroShotScorer:
    def __init__(
        self, encoder: Encoder, categories: CategoryTexts, *, cache_dir: str | Path | None = None, model_name: str = ""
    ) -> None:
        self.encoder = encoder
        self.categories = categories
        self.name_embeddings, self.path_embeddings, self.head_embeddings = self._category_embeddings(
            cache_dir, model_name
        )
        # along_path[c, a]: the weight of node a on c's path, growing with depth and summing to 1 per row (sparse:
        # ~depth entries a row), so that similarities @ along_path.T is each category's weighted path similarity.
        from scipy.sparse import csr_matrix

        hierarchy = categories.hierarchy
        size = len(hierarchy.labels)
        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for node in range(size):
            chain = hierarchy.ancestors(node)  # the node first, the root last
            weights = np.arange(len(chain), 0, -1, dtype=np.float32)
            rows.extend([node] * len(chain))
            cols.extend(chain)
            values.extend((weights / weights.sum()).tolist())
        self.path_mean = csr_matrix((values, (rows, cols)), shape=(size, size), dtype=np.float32)
        membership = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(size, size))
        # A node's subtree centroid: the normalised sum of the names of the node and all its descendants.
        centroids = np.asarray(membership.T @ self.name_embeddings, dtype=np.float32)
        self.subtree_embeddings = centroids / np.linalg.norm(centroids, axis=1, keepdims=True).clip(min=1e-9)

    def _category_embeddings(self, cache_dir: str | Path | None, model_name: str) -> tuple[Matrix, Matrix, Matrix]:
        cache = Path(cache_dir) / f"zeroshot-{self.categories.fingerprint(model_name)}.npz" if cache_dir else None
        if cache is not None and cache.exists():
            stored = np.load(cache, allow_pickle=False)
            return stored["names"], stored["paths"], stored["heads"]
        names = self.encoder.embed(self.categories.names)
        paths = self.encoder.embed(self.categories.paths)
        # Many categories share a head ("Accessories", "Shelves"): embed each word once.
        heads_by_node = [head_noun(name) for name in self.categories.names]
        unique = sorted(set(heads_by_node))
        position = {word: i for i, word in enumerate(unique)}
        heads = self.encoder.embed(unique)[[position[word] for word in heads_by_node]]
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, names=names, paths=paths, heads=heads)
        return names, paths, heads

    def score(self, product_embeddings: Matrix, candidates: list[int]) -> Matrix:
        """(n_products, n_candidates) scores, higher is better."""
        return np.asarray(product_embeddings @ self.linear(candidates).T, dtype=np.float32)

    def linear(self, candidates: list[int]) -> Matrix:
        """(n_candidates, dim): every term of the score is a dot product with the product's embedding (the full
        path, the depth-weighted mean of the path's subtree centroids, the head noun), so one vector per candidate
        scores it, and a whole chunk of products is one matrix product."""
        weights = self.path_mean[candidates]  # sparse: ~depth entries a row
        along_path = np.asarray(weights @ self.subtree_embeddings)
        return np.asarray(
            PATH_WEIGHT * self.path_embeddings[candidates]
            + (1 - PATH_WEIGHT) * along_path
            + HEAD_WEIGHT * self.head_embeddings[candidates],
            dtype=np.float32,
        )

    def top_k(
        self, texts: list[str], candidates: list[int], *, k: int = 5, temperature: float = COSINE_TEMPERATURE
    ) -> tuple[npt.NDArray[np.int64], Matrix]:
        """Top-k candidate node indices per text and a softmax over the candidates' scores (a confidence-like
        number; zero-shot scores are not calibrated probabilities)."""
        return self.top_k_embedded(self.encoder.embed(texts), candidates, k=k, temperature=temperature)

    def top_k_embedded(
        self, embeddings: Matrix, candidates: list[int], *, k: int = 5, temperature: float = COSINE_TEMPERATURE
    ) -> tuple[npt.NDArray[np.int64], Matrix]:
        """top_k for texts already embedded (stored embeddings: no encoder pass)."""
        scores = self.score(embeddings, candidates)
        shifted = (scores - scores.max(axis=1, keepdims=True)) / temperature
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        k = min(k, len(candidates))
        top = np.argsort(-scores, axis=1)[:, :k]
        nodes = np.asarray(candidates, dtype=np.int64)[top]
        return nodes, np.take_along_axis(probabilities, top, axis=1).astype(np.float32)
