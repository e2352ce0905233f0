"""bench/active_learning.py's simulation on a small synthetic catalog: the README's active-learning figures come from
it, and CI never runs the bench itself (it takes 15 minutes on the real catalogs)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import active_learning as al


@pytest.fixture
def catalog(tmp_path, monkeypatch) -> al.Catalog:
    """Four categories of 300 items: each a cluster, a tenth of its items halfway to another category's."""
    monkeypatch.setattr(al, "REPO", tmp_path)  # the SVG goes to a temporary folder
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 3
    y = np.repeat(np.arange(4), 300)
    x = centres[y] + rng.normal(size=(1200, 16))
    hard = rng.random(1200) < 0.1
    x[hard] = (centres[y[hard]] + centres[(y[hard] + 1) % 4]) / 2 + 0.3 * rng.normal(size=(int(hard.sum()), 16))
    order = rng.permutation(1200)
    return al.Catalog(
        "synthetic", x.astype(np.float32), y.astype(str), list(order[:900]), list(order[900:]), 2, 400, "items"
    )


def test_a_curve_ends_at_the_target_when_asked_and_counts_the_seed(catalog):
    seed = catalog.seed(0)
    assert len(seed) == 8  # 2 a category
    curve = al.run("random", catalog.x, catalog.y, catalog.pool, seed, catalog.test, 25, 40, stop_at=0.0)
    assert curve == [(8, curve[0][1])]  # reached at once: nothing labelled beyond the seed
    full = al.run("uncertainty", catalog.x, catalog.y, catalog.pool, seed, catalog.test, 25, 4)
    assert [n for n, _ in full] == [8, 33, 58, 83, 108]
    assert al.labels_to_reach(full, 2.0) is None


def test_draws_differ_in_seed_and_order_and_the_figures_are_their_means(catalog, capsys):
    assert catalog.seed(0) != catalog.seed(1)
    figures = al.simulate(catalog, batch=25, draws=3)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  draw ") and line.endswith("x")]
    assert len(lines) == 3
    assert figures["draws"] == 3
    ratios = [float(line.rsplit(": ", 1)[-1].rstrip("x")) for line in lines]
    assert figures["ratio"] == pytest.approx(np.mean(ratios), abs=0.01)
    counts = [line.split("uncertainty ")[1].split(",")[0] for line in lines]
    assert figures["uncertainty"] == pytest.approx(np.mean([int(count) for count in counts]))
    # A seed of 2 a category is not the README's run: its curves go under var/, never over docs/.
    assert (al.REPO / "var" / "bench" / "active-learning-synthetic-seed2-batch25-400-margin.svg").exists()
    assert not (al.REPO / "docs").exists()


def test_only_the_default_run_draws_over_the_readme_s_plots(catalog):
    catalog.seed_per_class = al.SEED_PER_CLASS
    assert al.plot_path(catalog, al.BATCH, None, "margin") == al.REPO / "docs" / "active-learning-synthetic.svg"
    for other in [(al.BATCH, None, "least"), (al.BATCH, 500, "margin"), (100, None, "margin")]:
        assert al.plot_path(catalog, *other).parent == al.REPO / "var" / "bench"
    catalog.seed_per_class = al.SEED_PER_CLASS + 4
    assert al.plot_path(catalog, al.BATCH, None, "margin").parent == al.REPO / "var" / "bench"


def test_the_plotted_draw_runs_past_its_budget_rather_than_dropping_out_of_the_mean(catalog, capsys):
    catalog.budget = 0  # the plot shows the seed alone: neither strategy can reach the target within it
    figures = al.simulate(catalog, batch=25, draws=1)
    assert figures["draws"] == 1
    assert figures["random"] > len(catalog.seed(0))
    assert figures["uncertainty"] > len(catalog.seed(0))
    assert capsys.readouterr().out.count("x the labels random") == 1
