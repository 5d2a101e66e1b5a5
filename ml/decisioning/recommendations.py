"""Product recommendations per person from purchase history, with a popularity fallback.

Implicit feedback: a person's orders (``marts.fct_orders``: subscriber_key, product_id,
ordered_at) are the only signal. The model is item-to-item collaborative filtering with the
conditional-probability similarity ("people who bought i went on to buy j"; Deshpande and
Karypis 2004, the item-based top-N family Amazon popularised):

- ``C[i, j]`` counts the ordered pairs of two different orders of one person, the first of
  product i and the second of j, over everyone; ``C[i, i]`` counts repeat purchases;
- ``P(j | i) = (C[i, j] + m * popularity[j]) / (C[i, :].sum() + m)``: the share of what
  buyers of i bought in their other orders, shrunk toward popularity (the share of orders)
  by ``prior_strength`` m pseudo-orders, so rarely co-bought products are not ranked on
  one or two pairs;
- a person's score for j is the mean of ``P(j | i)`` over their orders, and the top ``k``
  are recommended: a product they bought can come back (repeat purchases are learned
  from the data, as ``C[i, i]``, not assumed).

People with fewer than ``min_history`` orders get the popularity ranking. Each row says
which produced it (`collaborative` or `popularity`, ml/vocabulary.py). docs/models.md,
"Recommendations", gives the measured figures and why this similarity and not cosine, ALS
or BPR.

Evaluation is temporal: fit on orders before a cutoff, score recall@k and NDCG@k on the
distinct products each person bought from the cutoff on, against the popularity ranking
and, in the simulator, the world's true ranking (passed in: never computed here).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from ml.experiments.statistics import MeanEstimate, mean_interval
from ml.vocabulary import RECOMMENDATION_SOURCES

if TYPE_CHECKING:
    from ml.tracking import MlflowTarget

COLLABORATIVE, POPULARITY = RECOMMENDATION_SOURCES
ORDER_INPUT = ("subscriber_key", "product_id", "ordered_at")
RECOMMENDATION_COLUMNS = ("subscriber_key", "rank", "product_id", "score", "source")
RANKING_INPUT = ("subscriber_key", "rank", "product_id")
METHOD = "item_item_conditional_probability"
_BATCH = 4_096  # people scored at once: a (batch, products) dense block


@dataclass(frozen=True)
class RecommenderParams:
    """k: products recommended per person.
    min_history: orders a person needs before collaborative filtering; below, popularity
        (one order measured no better than popularity: docs/models.md).
    prior_strength: pseudo-orders of popularity added to each product's co-purchases.
    exclude_purchased: never recommend what the person already bought. Off: the world has
        repeat purchases and excluding them measured worse (docs/models.md)."""

    k: int = 5
    min_history: int = 2
    prior_strength: float = 100.0
    exclude_purchased: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "min_history"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.prior_strength, (int, float)) and math.isfinite(self.prior_strength)
                and self.prior_strength > 0):
            raise ValueError(f"prior_strength must be a positive number, got {self.prior_strength!r}")


@dataclass(frozen=True)
class Recommender:
    """A fitted model: everything ``recommend`` needs, nothing of later orders."""

    params: RecommenderParams
    product_ids: np.ndarray  # product of each column, sorted
    co_purchase: sparse.csr_matrix  # (products, products): C[i, j] / (C[i, :].sum() + m)
    prior_weight: np.ndarray  # per product i: m / (C[i, :].sum() + m)
    popularity: np.ndarray  # share of orders per product
    history: sparse.csr_matrix  # people x products, order counts
    subscriber_keys: pd.Index  # person of each row of history
    trained_until: pd.Timestamp | None  # the latest order the fit saw
    n_orders: int

    @property
    def popularity_order(self) -> np.ndarray:
        """Column indices, most ordered first (ties by product id)."""
        return np.lexsort((self.product_ids, -self.popularity))

    def next_purchase(self, counts: sparse.csr_matrix) -> np.ndarray:
        """(people, products): the mean of P(j | i) over each row's orders (``counts``: order
        counts per product), with P(j | i) = co_purchase[i, j] + prior_weight[i] * popularity[j].
        Sparse until this (people, products) block, so the catalogue size only costs its pairs."""
        orders = np.asarray(counts.sum(axis=1)).ravel()[:, None]
        prior = np.asarray(counts @ self.prior_weight).reshape(-1, 1) * self.popularity[None, :]
        return (np.asarray((counts @ self.co_purchase).todense()) + prior) / orders


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack columns {missing}")


def _usable_orders(orders: pd.DataFrame) -> pd.DataFrame:
    _check_columns(orders, ORDER_INPUT, "orders")
    usable = orders.loc[orders["subscriber_key"].notna() & orders["product_id"].notna(), list(ORDER_INPUT)]
    return usable.assign(
        subscriber_key=usable["subscriber_key"].astype(str),
        product_id=usable["product_id"].astype(str),
        ordered_at=pd.to_datetime(usable["ordered_at"]),
    )


def fit_recommender(orders: pd.DataFrame, params: RecommenderParams = RecommenderParams()) -> Recommender:
    """Fit on every order given (the caller chooses the window: ``split_orders`` for evaluation)."""
    usable = _usable_orders(orders)
    if usable.empty:
        raise ValueError("no orders with a subscriber_key and a product_id to fit recommendations on")
    people = pd.Index(np.sort(usable["subscriber_key"].unique()))
    products = np.sort(usable["product_id"].unique())
    history = sparse.csr_matrix(
        (np.ones(len(usable)), (people.get_indexer(usable["subscriber_key"]),
                                np.searchsorted(products, usable["product_id"].to_numpy()))),
        shape=(len(people), len(products)),
    )  # duplicates summed: order counts
    orders_per_product = np.asarray(history.sum(axis=0)).ravel()
    popularity = orders_per_product / orders_per_product.sum()
    # Ordered pairs of two different orders of one person: n_i * n_j, and n_i * (n_i - 1) on
    # the diagonal (a person's repeat purchases of one product).
    pairs = (history.T @ history - sparse.diags(orders_per_product)).tocsr()
    pairs.eliminate_zeros()
    m = float(params.prior_strength)
    denominator = np.asarray(pairs.sum(axis=1)).ravel() + m
    return Recommender(
        params=params,
        product_ids=products,
        co_purchase=(sparse.diags(1.0 / denominator) @ pairs).tocsr(),
        prior_weight=m / denominator,
        popularity=popularity,
        history=history,
        subscriber_keys=people,
        trained_until=usable["ordered_at"].max(),
        n_orders=len(usable),
    )


def _frame(keys: np.ndarray, chosen: np.ndarray, scores: np.ndarray, source: np.ndarray, product_ids) -> pd.DataFrame:
    """Long rows from (people, k) blocks; a chosen index of -1 (nothing left) is dropped."""
    k = chosen.shape[1]
    out = pd.DataFrame({
        "subscriber_key": np.repeat(np.asarray(keys, dtype=object), k),
        "rank": np.tile(np.arange(1, k + 1), len(keys)),
        "product_id": np.asarray(product_ids, dtype=object)[np.maximum(chosen, 0)].ravel(),
        "score": scores.ravel(),
        "source": source.ravel(),
    })
    return out.loc[chosen.ravel() >= 0].reset_index(drop=True)


def recommend(model: Recommender, subscriber_keys, k: int | None = None) -> pd.DataFrame:
    """``k`` (default the params') products per key: RECOMMENDATION_COLUMNS, rank 1 first.

    Keys with at least ``min_history`` orders in the fit's history get collaborative rows
    (score: the estimated probability that their next purchase is the product); any other
    key gets the popularity rows (score: the product's share of orders). Ties go to the
    more popular product, then the smaller product id.
    """
    n_products = len(model.product_ids)
    k = min(model.params.k if k is None else int(k), n_products)
    keys = pd.unique(pd.Series(list(subscriber_keys), dtype=object).astype(str))
    row = model.subscriber_keys.get_indexer(keys)
    orders = np.asarray(model.history.sum(axis=1)).ravel()
    warm = (row >= 0) & (orders[np.maximum(row, 0)] >= model.params.min_history)

    chosen = np.tile(model.popularity_order[:k], (len(keys), 1))
    scores = model.popularity[chosen]
    # Ties in score: the more popular product first (its position in the popularity order).
    tie_rank = np.empty(n_products)
    tie_rank[model.popularity_order] = np.arange(n_products)
    for start in range(0, int(warm.sum()), _BATCH):
        positions = np.flatnonzero(warm)[start : start + _BATCH]
        counts = model.history[row[positions]]
        score = model.next_purchase(counts)
        if model.params.exclude_purchased:
            score[counts.toarray() > 0] = -np.inf
        order = np.lexsort((np.broadcast_to(tie_rank, score.shape), -score), axis=1)[:, :k]
        best = np.take_along_axis(score, order, axis=1)
        chosen[positions] = np.where(np.isfinite(best), order, -1)  # -1: everything else excluded
        scores[positions] = best
    source = np.where(warm[:, None], COLLABORATIVE, POPULARITY).repeat(k, axis=1)
    return _frame(keys, chosen, scores, source, model.product_ids)


def popularity_ranking(model: Recommender, subscriber_keys, k: int | None = None) -> pd.DataFrame:
    """The baseline: everyone gets the ``k`` most ordered products of the fit's history
    (RECOMMENDATION_COLUMNS; score: the product's share of orders)."""
    k = min(model.params.k if k is None else int(k), len(model.product_ids))
    keys = pd.unique(pd.Series(list(subscriber_keys), dtype=object).astype(str))
    chosen = np.tile(model.popularity_order[:k], (len(keys), 1))
    source = np.full(chosen.shape, POPULARITY, dtype=object)
    return _frame(keys, chosen, model.popularity[chosen], source, model.product_ids)


# -- evaluation -----------------------------------------------------------------------------


def split_orders(orders: pd.DataFrame, cutoff) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders before ``cutoff``, orders at or after it)."""
    usable = _usable_orders(orders)
    before = usable["ordered_at"] < pd.Timestamp(cutoff)
    return usable.loc[before], usable.loc[~before]


@dataclass(frozen=True)
class RankingMetrics:
    """Means over the people with a held-out purchase. recall@k: the share of a person's
    distinct held-out products in their top k; NDCG@k: binary gains discounted by
    log2(rank + 1), over the best possible for min(k, their distinct products)."""

    recall: float
    ndcg: float
    people: int


def _per_person(rankings: pd.DataFrame, held_out: pd.DataFrame, k: int) -> pd.DataFrame:
    """recall and ndcg per person of ``held_out``, indexed by subscriber_key (sorted)."""
    _check_columns(rankings, RANKING_INPUT, "rankings")
    _check_columns(held_out, ("subscriber_key", "product_id"), "held-out purchases")
    relevant = held_out[["subscriber_key", "product_id"]].dropna().astype(str).drop_duplicates()
    if relevant.empty:
        raise ValueError("no held-out purchases to evaluate on")
    n_relevant = relevant.groupby("subscriber_key").size()
    top = rankings.loc[rankings["rank"] <= k, list(RANKING_INPUT)].astype({"subscriber_key": str, "product_id": str})
    hits = top.merge(relevant, on=["subscriber_key", "product_id"], how="inner")
    hits = hits.assign(hit=1.0, gain=1.0 / np.log2(hits["rank"].to_numpy(dtype=float) + 1.0))
    found = hits.groupby("subscriber_key")[["hit", "gain"]].sum().reindex(n_relevant.index, fill_value=0.0)
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))[np.minimum(n_relevant.to_numpy(), k) - 1]
    return pd.DataFrame(
        {"recall": found["hit"].to_numpy() / n_relevant.to_numpy(), "ndcg": found["gain"].to_numpy() / ideal},
        index=n_relevant.index,
    )


def ranking_metrics(rankings: pd.DataFrame, held_out: pd.DataFrame, k: int) -> RankingMetrics:
    """Score ``rankings`` (RANKING_INPUT) on ``held_out`` (subscriber_key, product_id).

    A person with held-out purchases but no ranking scores zero.
    """
    scores = _per_person(rankings, held_out, k)
    return RankingMetrics(recall=float(scores["recall"].mean()), ndcg=float(scores["ndcg"].mean()), people=len(scores))


@dataclass(frozen=True)
class RecommendationEvaluation:
    """Held-out figures of a fit on the orders before ``cutoff``.

    ``model``: the recommender as used (people without history get its popularity rows);
    ``popularity``: the baseline for everyone; ``oracle``: the world's true ranking, when the
    caller has one. ``with_history`` holds the same three over the held-out people the fit
    saw buy: the only ones collaborative filtering can help. ``recall_gain`` is the paired
    per-person difference of recall, model minus popularity, with its 95% t interval.
    """

    params: RecommenderParams
    cutoff: pd.Timestamp
    trained_until: pd.Timestamp | None
    n_train_orders: int
    n_train_people: int
    n_test_orders: int
    model: RankingMetrics
    popularity: RankingMetrics
    recall_gain: MeanEstimate
    with_history: dict[str, RankingMetrics]
    oracle: RankingMetrics | None = None

    def metrics(self) -> dict[str, float]:
        """Flat names for MLflow: ``test_<ranking>_<recall|ndcg>_at_<k>``, the same with
        ``_with_history``, the gain and its interval, counts, and the share of the oracle."""
        k = self.params.k
        out = {
            "n_train_orders": float(self.n_train_orders),
            "n_train_people": float(self.n_train_people),
            "n_test_orders": float(self.n_test_orders),
            "n_test_people": float(self.model.people),
            "n_test_people_with_history": float(self.with_history["model"].people) if self.with_history else 0.0,
            f"test_recall_at_{k}_gain_over_popularity": self.recall_gain.mean,
            f"test_recall_at_{k}_gain_low": self.recall_gain.ci_low,
            f"test_recall_at_{k}_gain_high": self.recall_gain.ci_high,
        }
        rankings = {"model": self.model, "popularity": self.popularity, "oracle": self.oracle}
        for suffix, group in (("", rankings), ("_with_history", self.with_history)):
            for name, value in group.items():
                if value is not None:
                    out[f"test_{name}{suffix}_recall_at_{k}"] = value.recall
                    out[f"test_{name}{suffix}_ndcg_at_{k}"] = value.ndcg
        if self.oracle is not None and self.oracle.recall > 0:
            out[f"test_recall_at_{k}_share_of_oracle"] = self.model.recall / self.oracle.recall
        return out


def evaluate_recommender(
    orders: pd.DataFrame,
    cutoff,
    params: RecommenderParams = RecommenderParams(),
    oracle_rankings: pd.DataFrame | None = None,
) -> tuple[Recommender, RecommendationEvaluation]:
    """Fit on the orders before ``cutoff`` only; score on the products bought from it on.

    ``oracle_rankings`` (RANKING_INPUT), from the simulator's truth, is scored on the same
    held-out purchases; it never reaches the fit.
    """
    cutoff = pd.Timestamp(cutoff)
    train, test = split_orders(orders, cutoff)
    if train.empty or test.empty:
        raise ValueError(f"the cutoff {cutoff} leaves no orders before it or none from it on")
    model = fit_recommender(train, params)
    people = pd.unique(test["subscriber_key"])
    rankings = {"model": recommend(model, people), "popularity": popularity_ranking(model, people)}
    if oracle_rankings is not None:
        rankings["oracle"] = oracle_rankings
    scores = {name: _per_person(ranking, test, params.k) for name, ranking in rankings.items()}
    seen = scores["model"].index.isin(model.subscriber_keys)

    def summary(frame: pd.DataFrame) -> RankingMetrics:
        return RankingMetrics(recall=float(frame["recall"].mean()), ndcg=float(frame["ndcg"].mean()), people=len(frame))

    return model, RecommendationEvaluation(
        params=params,
        cutoff=cutoff,
        trained_until=model.trained_until,
        n_train_orders=model.n_orders,
        n_train_people=len(model.subscriber_keys),
        n_test_orders=len(test),
        model=summary(scores["model"]),
        popularity=summary(scores["popularity"]),
        recall_gain=mean_interval((scores["model"]["recall"] - scores["popularity"]["recall"]).to_numpy()),
        with_history={name: summary(frame.loc[seen]) for name, frame in scores.items()} if seen.any() else {},
        oracle=summary(scores["oracle"]) if "oracle" in scores else None,
    )


def log_evaluation(
    tracking: MlflowTarget, evaluation: RecommendationEvaluation, run_tags: dict[str, str] | None = None
) -> str:
    """One MLflow run with the evaluation's params and metrics, through the target's client.
    Returns the run id."""
    from mlflow.entities import Metric, Param

    from ml.tracking import ensure_experiment

    client = tracking.client
    experiment_id = ensure_experiment(tracking)
    params = {
        "method": METHOD,
        **asdict(evaluation.params),
        "cutoff": evaluation.cutoff.isoformat(),
        "trained_until": "" if evaluation.trained_until is None else pd.Timestamp(evaluation.trained_until).isoformat(),
        "fallback": POPULARITY,
    }
    run = client.create_run(
        experiment_id,
        run_name=f"recommendations-{evaluation.cutoff.date()}",
        tags={**(run_tags or {}), "model": "recommendations", "model_family": METHOD},
    )
    status = "FAILED"
    try:
        now_ms = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        client.log_batch(
            run.info.run_id,
            params=[Param(key, str(value)) for key, value in params.items()],
            metrics=[
                Metric(key, float(value), now_ms, 0)
                for key, value in evaluation.metrics().items()
                if math.isfinite(value)
            ],
        )
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


# -- a day of the loop ----------------------------------------------------------------------

# Held-out window of the daily evaluation: the fit on orders before as_of minus this is
# scored on the purchases after, so each day's recommendations come with fresh figures.
EVALUATION_DAYS = 30
# The day's recommendations, one row per (person, rank): RECOMMENDATION_COLUMNS and the fit's facts.
DAILY_RECOMMENDATION_COLUMNS = (*RECOMMENDATION_COLUMNS, "method", "trained_until")


@dataclass(frozen=True)
class DailyRecommendations:
    """``rows``: DAILY_RECOMMENDATION_COLUMNS for every person asked about (popularity for
    anyone the fit has too little history of). ``evaluation``: the held-out figures of a fit
    on the orders before ``as_of - EVALUATION_DAYS``, or None when that window leaves no
    orders on one side (``why_not_evaluated`` says which)."""

    rows: pd.DataFrame
    evaluation: RecommendationEvaluation | None
    why_not_evaluated: str | None


def recommend_for_day(
    orders: pd.DataFrame, subscriber_keys, as_of, params: RecommenderParams = RecommenderParams()
) -> DailyRecommendations:
    """Fit on every order up to ``as_of`` and recommend ``params.k`` products to each key;
    evaluate a fit on the orders before ``as_of - EVALUATION_DAYS`` on those after.
    Orders after ``as_of`` are ignored (they had not happened)."""
    usable = _usable_orders(orders)
    as_of = pd.Timestamp(as_of)
    known = usable[usable["ordered_at"] <= as_of]
    cutoff = as_of - pd.Timedelta(days=EVALUATION_DAYS)
    evaluation, why_not = None, None
    try:
        _, evaluation = evaluate_recommender(known, cutoff, params)
    except ValueError as error:
        why_not = str(error)
    if known.empty:
        return DailyRecommendations(
            pd.DataFrame(columns=list(DAILY_RECOMMENDATION_COLUMNS)), evaluation,
            why_not or "no orders up to as_of: nothing to recommend from",
        )
    model = fit_recommender(known, params)
    rows = recommend(model, subscriber_keys).assign(method=METHOD, trained_until=model.trained_until)
    return DailyRecommendations(rows[list(DAILY_RECOMMENDATION_COLUMNS)], evaluation, why_not)
