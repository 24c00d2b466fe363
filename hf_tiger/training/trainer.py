"""`Seq2SeqTrainer` for TIGER: evaluation ranks items with the model's constrained beam search."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import EvalPrediction, Seq2SeqTrainer, Trainer
from transformers.utils import logging

from ..machine import PrecisionAlignedTrainerMixin
from ..metrics import compute_recommendation_metrics, ranks_from_semantic_ids, semantic_id_lists

logger = logging.get_logger(__name__)


class RetrievalMetricsComputer:
    """`compute_metrics` for [`TigerTrainer`]: the retrieval metrics of generated semantic IDs.

    Scores with [`hf_tiger.metrics.compute_recommendation_metrics`], the function that also scores the count
    baselines: Recall@K, NDCG@K and MRR@K, plus catalogue coverage@K with `catalogue_size` and popularity
    percentile@K with `percentiles`. Items are compared by their full semantic ID (all `num_levels` tokens,
    collision level included), so a hit is always the right item. Also reports the exact mean per-example loss
    (`loss`) and the number of examples scored (`num_examples`, after duplicates added by distributed sharding
    were dropped).

    Args:
        ks (`Sequence[int]`, *optional*, defaults to `(5, 10)`): cut-offs.
        catalogue_size (`int`, *optional*): items in the catalogue (adds `coverage@K`).
        percentiles (`Mapping[tuple[int, ...], float]`, *optional*): popularity percentile per semantic ID as token
            ids (see [`hf_tiger.training.item_popularity_percentiles`]; adds `popularity_percentile@K`).

    Call with an `EvalPrediction` whose `predictions` are `(generated, per_example_loss)` (or `generated`
    alone) with `generated` of shape `(num_examples, num_returned, num_levels)` and `label_ids` of shape
    `(num_examples, num_levels)`.
    """

    def __init__(
        self,
        ks: Sequence[int] = (5, 10),
        catalogue_size: int | None = None,
        percentiles: Mapping[tuple[int, ...], float] | None = None,
    ):
        self.ks = tuple(int(k) for k in ks)
        self.catalogue_size = catalogue_size
        self.percentiles = percentiles

    def __call__(self, eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions = eval_prediction.predictions
        losses = None
        if isinstance(predictions, (tuple, list)):
            generated = predictions[0]
            losses = predictions[1] if len(predictions) > 1 else None
        else:
            generated = predictions
        labels = np.asarray(eval_prediction.label_ids)
        ranks_from_semantic_ids(np.asarray(generated), labels)  # checks shapes and padding with clear errors
        metrics = compute_recommendation_metrics(
            semantic_id_lists(generated, catalogue=self.percentiles),
            [tuple(int(t) for t in row) for row in labels.tolist()],
            ks=self.ks,
            catalogue_size=self.catalogue_size,
            percentiles=self.percentiles,
        )
        if losses is not None:
            metrics["loss"] = float(np.mean(np.asarray(losses, dtype=np.float64)))
        return metrics


class TigerTrainer(PrecisionAlignedTrainerMixin, Seq2SeqTrainer):
    """`Seq2SeqTrainer` whose evaluation generates ranked items with TIGER's trie-constrained beam search.

    Differences from `Seq2SeqTrainer`, each fixing a way to get retrieval metrics wrong:

    - predictions are the top `num_return_sequences` semantic IDs per example, shape
      `(batch, num_return_sequences, num_levels)` (padding rows never match), from `model.generate()` with
      `num_beams=generation_num_beams` (the model's generate is constrained to catalogue items);
    - predictions are gathered with `gather_for_metrics`, which drops the samples that distributed sharding
      duplicates to even out the last batch (`Seq2SeqTrainer` switches to plain `gather`, which keeps them and
      skews the metrics of a multi-process run);
    - the evaluation loss is the exact mean of per-example losses (the stock loop repeats each batch's mean
      `eval_batch_size` times, wrong for a short last batch).

    The arguments are those of `Seq2SeqTrainer`; `args` should be a [`TigerTrainingArguments`] (its `metric_ks`,
    `num_return_sequences` and `fast_beam_search` are read when present). `compute_metrics` defaults to
    [`RetrievalMetricsComputer`].
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.compute_metrics is None:
            self.compute_metrics = RetrievalMetricsComputer(
                getattr(self.args, "metric_ks", (5, 10)),
                catalogue_size=getattr(self.processing_class, "catalogue_size", None),
            )
        self._metrics_gather = self.gather_function
        # compute_loss below honours `num_items_in_batch`, so the Trainer's token-count bookkeeping applies.
        self.model_accepts_loss_kwargs = True

    # ------------------------------------------------------------------------------------------------- training

    def _set_signature_columns_if_needed(self):
        """The model's forward arguments, plus `history_ends`, the column the collator turns user-sequence
        features into packed decoder rows and their attention masks with (see [`TigerDataCollator`])."""
        super()._set_signature_columns_if_needed()
        if "history_ends" not in self._signature_columns:
            self._signature_columns.append("history_ends")

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        """Token-summed cross-entropy divided by the number of label tokens of the whole optimizer step.

        T5's own loss is a per-batch mean that ignores `num_items_in_batch`, while the Trainer still multiplies it
        by the number of processes under DDP (`average_tokens_across_devices`): gradients come out `world_size`
        times too large and gradient clipping then makes a 2-process run differ from a 1-process run. Here the
        loss is `sum / num_items_in_batch` (all label tokens of the step, across devices and accumulation steps),
        so every setup optimises the same objective.
        """
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        if "decoder_input_ids" not in model_inputs:  # packed user-sequence batches bring their own
            model_inputs["decoder_input_ids"] = self.accelerator.unwrap_model(model)._shift_right(labels)
        outputs = model(**model_inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            labels.reshape(-1),
            ignore_index=-100,
            reduction="sum",
            label_smoothing=float(getattr(self.args, "label_smoothing_factor", 0.0) or 0.0),
        )
        if num_items_in_batch is None:
            loss = loss / (labels != -100).sum().clamp(min=1)
        else:
            loss = loss / torch.as_tensor(num_items_in_batch, device=loss.device, dtype=loss.dtype)
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        return (loss, outputs) if return_outputs else loss

    # ----------------------------------------------------------------------------------------------- evaluation

    def _generation_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        gen_kwargs = {k: v for k, v in gen_kwargs.items() if v is not None}
        gen_kwargs.setdefault("num_beams", self.args.generation_num_beams)
        gen_kwargs.setdefault(
            "num_return_sequences", getattr(self.args, "num_return_sequences", None) or gen_kwargs["num_beams"]
        )
        gen_kwargs.pop("max_length", None)  # the model fixes the length: exactly num_levels tokens
        gen_kwargs.pop("max_new_tokens", None)
        return gen_kwargs

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        self._gen_kwargs = self._generation_kwargs(gen_kwargs)
        self.gather_function = self._metrics_gather
        return Trainer.evaluate(self, eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", **gen_kwargs):
        self._gen_kwargs = self._generation_kwargs(gen_kwargs)
        self.gather_function = self._metrics_gather
        return Trainer.predict(self, test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation rows in dataset order on one process (distributed: the Trainer's sharding).

        transformers samples evaluation rows with a *shuffled* `LengthGroupedSampler` when
        `train_sampling_strategy="group_by_length"` (TIGER's default): predictions then come back in another order
        than the rows, silently misaligning anything matched to rows by position (the seen / unseen split, sample
        recommendations). The training code sorts evaluation rows by length itself, so order costs no padding.
        """
        if eval_dataset is None or not hasattr(eval_dataset, "__len__"):
            return None
        if self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None

    def _supports_fast_flag(self, model) -> bool:
        try:
            return "fast_beam_search" in inspect.signature(model.generate).parameters
        except (TypeError, ValueError):
            return False

    def generate_semantic_ids(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor, **gen_kwargs):
        """Top semantic IDs per input with the model's constrained `generate()`.

        Returns:
            `torch.LongTensor` of shape `(batch, num_return_sequences, num_levels)`: token ids, best first.
        """
        model = self.accelerator.unwrap_model(model)
        gen_kwargs = self._generation_kwargs(gen_kwargs)
        num_return = int(gen_kwargs["num_return_sequences"])
        if self._supports_fast_flag(model) and hasattr(self.args, "fast_beam_search"):
            gen_kwargs.setdefault("fast_beam_search", self.args.fast_beam_search)
        # the unwrapped model (and the fast beam search, which calls its submodules) runs outside the autocast that
        # accelerate wraps around forward(): the mixed precision of training (bf16 / fp16) is applied here
        with torch.no_grad(), self.accelerator.autocast():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **gen_kwargs)
        sequences = output if isinstance(output, torch.Tensor) else output.sequences
        num_levels = int(model.config.num_levels)
        batch = input_ids.shape[0]
        if sequences.shape[0] != batch * num_return or sequences.shape[1] < 1 + num_levels:
            raise ValueError(
                f"generate() returned sequences of shape {tuple(sequences.shape)}; expected "
                f"({batch} * {num_return}, 1 + {num_levels}) (decoder start token + one semantic ID)"
            )
        return sequences[:, 1 : 1 + num_levels].reshape(batch, num_return, num_levels)

    def prediction_step(self, model, inputs, prediction_loss_only: bool, ignore_keys=None, **gen_kwargs):
        if not self.args.predict_with_generate or prediction_loss_only:
            return Trainer.prediction_step(
                self, model, inputs, prediction_loss_only=prediction_loss_only, ignore_keys=ignore_keys
            )
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        if not gen_kwargs and hasattr(self, "_gen_kwargs"):
            gen_kwargs = dict(self._gen_kwargs)
        generated = self.generate_semantic_ids(model, inputs["input_ids"], inputs.get("attention_mask"), **gen_kwargs)
        if labels is None:
            return None, generated, None
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), labels=labels)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[1]
        token_loss = F.cross_entropy(
            logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none"
        )  # (batch, num_levels)
        mask = (labels != -100).to(token_loss.dtype)
        per_example_loss = (token_loss * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return None, (generated, per_example_loss), labels
