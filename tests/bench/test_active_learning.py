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


@pytest.fixture
def shot(catalog) -> al.ZeroShot:
    """A zero-shot scorer that knows the categories roughly: cosine to each category's mean, blurred with noise."""
    means = np.stack([catalog.x[catalog.y == str(c)].mean(axis=0) for c in range(4)])
    unit = catalog.x / np.linalg.norm(catalog.x, axis=1, keepdims=True)
    cosine = unit @ (means / np.linalg.norm(means, axis=1, keepdims=True)).T
    prior = np.asarray(cosine + np.random.default_rng(1).normal(scale=0.3, size=cosine.shape), dtype=np.float32)
    return al.ZeroShot(prior, prior.argmax(axis=1) == catalog.y.astype(int), al._softmax_margin(prior))


def test_the_product_serves_zero_shot_until_a_fast_head_can_be_fitted(catalog, shot):
    zero_shot = float(np.mean(shot.right[catalog.test]))
    curve = al.product_run("queue", catalog, shot, 25, 3)
    assert [n for n, _ in curve] == [0, 25, 50, 75]  # no seed
    assert curve[0][1] == pytest.approx(zero_shot)
    # 2 labels in 2 categories are enough: a head after 25 labels, which knows the synthetic categories better.
    assert curve[-1][1] > zero_shot


def test_the_product_s_fast_head_answers_only_with_categories_it_has_labels_for(catalog, shot):
    from mlcore.engine.fasthead import fit

    labelled = [i for i in catalog.pool if catalog.y[i] in ("0", "1")][:20]
    head = fit(catalog.x[labelled], list(catalog.y[labelled]), prior=shot.prior[labelled][:, :2], prior_weight=0.5)
    column = {str(c): c for c in range(4)}
    test = np.array(catalog.test)
    right, margins = al._served(head, column, catalog, shot, test)
    assert len(margins) == len(test)
    unknown = np.isin(catalog.y[test], ["2", "3"])
    assert not right[unknown].any()  # never right about a category it has no label for
    assert right[~unknown].mean() > 0.9
    right, margins = al._served(None, column, catalog, shot, test)
    assert np.array_equal(right, shot.right[test])
    assert np.array_equal(margins, shot.margin[test])


def test_the_queue_asks_for_the_smallest_margins_first_and_random_for_its_share(catalog, shot, monkeypatch):
    pool = np.array(catalog.pool)
    smallest = set(pool[np.argsort(shot.margin[pool], kind="stable")[:25]].tolist())
    monkeypatch.setattr(al, "PRODUCT_RANDOM_SHARE", 0.0)
    asked: list[int] = []
    al.product_run("queue", catalog, shot, 25, 0, labelled=asked)
    assert set(asked) == smallest  # zero-shot's margins: no label yet
    monkeypatch.setattr(al, "PRODUCT_RANDOM_SHARE", 0.2)
    asked = []
    al.product_run("queue", catalog, shot, 25, 0, labelled=asked)
    assert 10 <= len(set(asked) & smallest) < 25  # about a fifth drawn at random
    asked = []
    al.product_run("random", catalog, shot, 25, 0, labelled=asked)
    assert len(set(asked) & smallest) < 10
    # The cold-start change measured: at random until a fast head serves, then by margin.
    monkeypatch.setattr(al, "PRODUCT_RANDOM_SHARE", 0.0)
    asked = []
    al.product_run("queue", catalog, shot, 25, 1, labelled=asked, cold_start="random")
    assert len(set(asked[:25]) & smallest) < 10  # no head yet: random
    assert len(asked) == 50  # and a second round once a head serves


def test_the_product_simulation_reports_the_mean_of_its_draws(catalog, shot, monkeypatch, capsys):
    monkeypatch.setattr(al, "zero_shot", lambda _: shot)
    figures = al.simulate_product(catalog, batch=25, draws=2)
    out = capsys.readouterr().out
    assert "no seed" in out
    assert figures["draws"] == 2
    lines = [line for line in out.splitlines() if line.startswith("  draw ") and "x; accuracy" in line]
    ratios = [float(line.split("x; accuracy")[0].rsplit(": ", 1)[-1]) for line in lines]
    assert len(ratios) == 2
    assert figures["ratio"] == pytest.approx(np.mean(ratios), abs=0.01)
    assert (al.REPO / "docs" / "active-learning-product-synthetic.svg").exists()  # the default run's plot
    al.simulate_product(catalog, batch=50, draws=1)
    assert (al.REPO / "var" / "bench" / "active-learning-product-synthetic-batch50-400-queue.svg").exists()
    # Both strategies' serving models at each budget point, the mean of the draws; zero-shot's at the start.
    assert len(figures["queue_at_budgets"]) == len(al.PRODUCT_BUDGETS) == len(figures["random_at_budgets"])
    assert figures["queue_at_budgets"][-1] > figures["zero_shot"]
