"""`evaluate` metric script: Recall@K, NDCG@K and MRR@K for next-item retrieval (see `hf_tiger.metrics`).

Load it offline with `hf_tiger.metrics.load_evaluate_metric()` or `evaluate.load(hf_tiger.metrics.EVALUATE_SCRIPT)`.
"""

import datasets
import evaluate

from hf_tiger.metrics import compute_retrieval_metrics

_DESCRIPTION = """
Recall@K, NDCG@K and MRR@K with one relevant item per example. `predictions` are ranked item lists (best first),
`references` the target item of each example. A target absent from the list or ranked at position >= K scores 0;
lists shorter than K are scored as they are; a real item listed twice is an error.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int | str]]`): ranked items per example, best first.
    references (`list[int | str]`): the target item per example.
    ks (`list[int]`, *optional*, defaults to `[5, 10]`): cut-offs.
Returns:
    `dict[str, float]` with `recall@K`, `ndcg@K` and `mrr@K` for each K.
Examples:
    >>> metric = evaluate.load(hf_tiger.metrics.EVALUATE_SCRIPT)
    >>> metric.compute(predictions=[[3, 1, 2], [5, 6]], references=[1, 7], ks=[2])
    {'recall@2': 0.5, 'ndcg@2': 0.31546487678572877, 'mrr@2': 0.25}
"""

_CITATION = """
@inproceedings{rajput2023tiger,
  title={Recommender Systems with Generative Retrieval},
  author={Rajput, Shashank and others},
  booktitle={NeurIPS},
  year={2023}
}
"""


class TigerRetrievalMetric(evaluate.Metric):
    """Recall@K / NDCG@K / MRR@K as an `evaluate` metric (integer or string item ids)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("int64")), "references": datasets.Value("int64")}
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("string")),
                        "references": datasets.Value("string"),
                    }
                ),
            ],
        )

    def _compute(self, predictions, references, ks=(5, 10)):
        return compute_retrieval_metrics(predictions, references, ks=tuple(int(k) for k in ks))
