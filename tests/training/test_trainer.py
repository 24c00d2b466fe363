"""TigerTrainer's evaluation: constrained generation -> ranked items -> exact-match Recall/NDCG."""

import numpy as np
import pytest
import torch
from tiger_training_helpers import TINY_MODEL
from transformers import EvalPrediction, TrainingArguments

from hf_tiger.baselines import PopularityRecommender
from hf_tiger.metrics import compute_recommendation_metrics, popularity_percentiles
from hf_tiger.training import (
    RetrievalMetricsComputer,
    TigerDataCollator,
    TigerTrainer,
    TigerTrainingArguments,
    build_tiger_model,
    item_popularity_percentiles,
    tokenize_split,
)
from hf_tiger.training.arguments import TigerModelArguments
from hf_tiger.training.train import retrieval_metrics_computer


def test_metrics_computer_uses_full_semantic_ids():
    labels = np.array([[10, 20, 30, 40], [11, 21, 31, 41]])
    generated = np.array(
        [
            [[10, 20, 30, 41], [10, 20, 30, 40]],  # collision level differs first, then the exact ID at rank 1
            [[0, 0, 0, 0], [0, 0, 0, 0]],  # padding rows: miss
        ]
    )
    losses = np.array([1.0, 3.0])
    got = RetrievalMetricsComputer(ks=(1, 2))(EvalPrediction(predictions=(generated, losses), label_ids=labels))
    assert got["recall@1"] == 0.0 and got["recall@2"] == 0.5
    assert got["ndcg@2"] == pytest.approx(0.5 / np.log2(3))
    assert got["loss"] == 2.0 and got["num_examples"] == 2
    assert got["mrr@2"] == pytest.approx(0.25)
    # with the catalogue and popularity: the padding rows (outside the catalogue) are no items
    percentiles = {(10, 20, 30, 41): 0.2, (10, 20, 30, 40): 0.6, (11, 21, 31, 41): 1.0}
    full = RetrievalMetricsComputer(ks=(1, 2), catalogue_size=10, percentiles=percentiles)(
        EvalPrediction(predictions=(generated, losses), label_ids=labels)
    )
    assert full["coverage@1"] == pytest.approx(1 / 10) and full["coverage@2"] == pytest.approx(2 / 10)
    assert full["popularity_percentile@2"] == pytest.approx((0.2 + 0.6) / 2)
    assert full["recall@2"] == 0.5


def test_item_popularity_percentiles_key_semantic_ids(ml100k, tiny_tokenizer):
    sequences, _ = ml100k
    got = item_popularity_percentiles(tiny_tokenizer, sequences["train"])
    assert len(got) == tiny_tokenizer.catalogue_size
    counts = PopularityRecommender().fit(sequences["train"]).popularity
    top = counts.most_common(1)[0][0]
    assert got[tuple(tiny_tokenizer.item_token_ids(top))] == 1.0
    other = dict(sequences["train"][:3])
    other["target"] = [10**9] * 3
    with pytest.raises(ValueError, match="not in the tokenizer's catalogue"):
        item_popularity_percentiles(tiny_tokenizer, other)


def test_trainer_metrics_equal_recommend_metrics(ml100k, tiny_tokenizer, tmp_path):
    """The trainer's ranking (generate -> semantic IDs) equals model.recommend's item ranking."""
    sequences, _ = ml100k
    torch.manual_seed(0)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    split = sequences["validation"].select(range(23))
    args = TigerTrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=8,
        generation_num_beams=10,
        metric_ks=[1, 5, 10],
        metric_for_best_model="recall@10",
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    trainer = TigerTrainer(
        model=model,
        args=args,
        data_collator=TigerDataCollator(pad_token_id=tiny_tokenizer.pad_token_id),
        processing_class=tiny_tokenizer,
        compute_metrics=retrieval_metrics_computer(tiny_tokenizer, sequences["train"], args.metric_ks),
    )
    encoded = tokenize_split(split, tiny_tokenizer, cache_dir=tmp_path / "cache", split_name="validation")
    metrics = trainer.evaluate(encoded)
    assert metrics["eval_num_examples"] == 23
    recommended = model.recommend(
        [list(h) for h in split["history"]], tokenizer=tiny_tokenizer, user_ids=list(split["user_id"]),
        top_k=10, num_beams=10,
    )
    # The same function scores the item ids (as the baselines are scored): every metric agrees.
    percentiles = popularity_percentiles(
        PopularityRecommender().fit(sequences["train"]).popularity, catalogue=tiny_tokenizer.item_ids
    )
    expected = compute_recommendation_metrics(
        recommended,
        list(split["target"]),
        ks=(1, 5, 10),
        catalogue_size=tiny_tokenizer.catalogue_size,
        percentiles=percentiles,
    )
    assert {"eval_mrr@10", "eval_coverage@10", "eval_popularity_percentile@10"} <= set(metrics)
    for key, value in expected.items():
        assert metrics[f"eval_{key}"] == pytest.approx(value)
    # transformers' own beam search with the trie processor ranks the same items.
    trainer.args.fast_beam_search = False
    slow = trainer.evaluate(encoded)
    for key in ("recall@1", "recall@5", "recall@10", "ndcg@10"):
        assert slow[f"eval_{key}"] == pytest.approx(metrics[f"eval_{key}"])
    # The loss is the mean of per-example losses, not a repeated batch mean.
    with torch.no_grad():
        batch = tiny_tokenizer.batch_encode_histories(
            [list(h) for h in split["history"]], user_ids=list(split["user_id"]), targets=list(split["target"])
        )
        logits = model(**batch).logits
        per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["labels"], reduction="none")
    assert metrics["eval_loss"] == pytest.approx(per_token.mean().item(), rel=1e-5)


def _loss_trainer(model, tokenizer, tmp_path, **kwargs):
    args = TigerTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", eval_strategy="no", save_strategy="no",
        load_best_model_at_end=False, **kwargs,
    )
    return TigerTrainer(model=model, args=args, processing_class=tokenizer,
                        data_collator=TigerDataCollator(pad_token_id=tokenizer.pad_token_id))


def test_label_smoothing_factor_smooths_the_training_loss(ml100k, tiny_tokenizer, tmp_path):
    sequences, _ = ml100k
    torch.manual_seed(0)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL)).eval()
    split = sequences["train"].select(range(9))
    batch = tiny_tokenizer.batch_encode_histories(
        [list(h) for h in split["history"]], user_ids=list(split["user_id"]), targets=list(split["target"])
    )
    plain = _loss_trainer(model, tiny_tokenizer, tmp_path).compute_loss(model, dict(batch))
    smoothed = _loss_trainer(model, tiny_tokenizer, tmp_path, label_smoothing_factor=0.2).compute_loss(
        model, dict(batch)
    )
    with torch.no_grad():
        logits = model(**batch).logits
    log_probs = logits.log_softmax(-1)
    nll = -log_probs.gather(-1, batch["labels"].unsqueeze(-1)).squeeze(-1).mean()
    uniform = -log_probs.mean(-1).mean()
    assert plain.item() == pytest.approx(nll.item(), rel=1e-5)
    assert smoothed.item() == pytest.approx((0.8 * nll + 0.2 * uniform).item(), rel=1e-5)


def test_training_batches_are_grouped_by_length_by_default(tmp_path):
    args = TigerTrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert args.train_sampling_strategy == "group_by_length"


def test_build_tiger_model_embedding_init_from_rqvae(tiny_tokenizer, tmp_path):
    from hf_tiger import RQVAEConfig, RQVAEModel

    rqvae = RQVAEModel(RQVAEConfig(input_dim=6, hidden_dims=[12], latent_dim=4, codebook_size=8, num_levels=3))
    rqvae.kmeans_init_(torch.randn(64, 6, generator=torch.Generator().manual_seed(0)))
    rqvae.save_pretrained(tmp_path / "rqvae")
    torch.manual_seed(0)
    random_init = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    torch.manual_seed(0)
    from_codebooks = build_tiger_model(
        tiny_tokenizer, TigerModelArguments(**TINY_MODEL, embedding_init="rqvae"), rqvae=str(tmp_path / "rqvae")
    )
    level0 = slice(tiny_tokenizer.level_offsets[0], tiny_tokenizer.level_offsets[0] + 8)
    assert not torch.equal(random_init.shared.weight[level0], from_codebooks.shared.weight[level0])
    # codes whose codebook vectors are close get close embeddings
    codebook = rqvae.quantizer.codebooks[0].detach()
    embedded = from_codebooks.shared.weight[level0].detach()
    code_dist = torch.cdist(codebook, codebook).flatten()
    embed_dist = torch.cdist(embedded, embedded).flatten()
    assert torch.corrcoef(torch.stack([code_dist, embed_dist]))[0, 1] > 0.8
    with pytest.raises(ValueError, match="embedding_init='rqvae' needs the RQ-VAE"):
        build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL, embedding_init="rqvae"))
    with pytest.raises(ValueError, match="embedding_init must be 'random' or 'rqvae'"):
        TigerModelArguments(embedding_init="codebook")


def test_bf16_evaluation_decodes_under_autocast(ml100k, tiny_tokenizer, tmp_path):
    """With bf16=True (set by hand here, or by auto_cpu_bf16 on a CPU with AMX / AVX512-BF16), the constrained
    search of evaluation runs in bf16 like the training forward, though it calls the unwrapped model's submodules."""
    sequences, _ = ml100k
    torch.manual_seed(0)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    split = tokenize_split(
        sequences["validation"].select(range(12)), tiny_tokenizer, cache_dir=tmp_path / "cache", split_name="val"
    )
    dtypes = []
    query = model.decoder.block[0].layer[0].SelfAttention.o
    query.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    trainer = _loss_trainer(
        model, tiny_tokenizer, tmp_path, bf16=True, generation_num_beams=10, per_device_eval_batch_size=4
    )
    metrics = trainer.evaluate(split)
    assert metrics["eval_num_examples"] == 12 and 0.0 <= metrics["eval_recall@10"] <= 1.0
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert next(model.parameters()).dtype == torch.float32


def test_trainers_of_different_precisions_in_one_process(tiny_tokenizer, tmp_path):
    """The training script trains the RQ-VAE in fp32 and then TIGER in bf16 (on a CPU with native bf16) in one
    process; accelerate's per-process state refused the second Trainer ("AcceleratorState has already been
    initialized") before `align_accelerator_precision`."""
    from accelerate.state import AcceleratorState

    from hf_tiger import RQVAEConfig, RQVAEModel
    from hf_tiger.models.rqvae.training_rqvae import RQVAETrainer

    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    rqvae = RQVAEModel(RQVAEConfig(input_dim=6, hidden_dims=[12], latent_dim=4, codebook_size=8, num_levels=3))
    try:
        precisions = []
        for bf16 in (False, True, False):
            trainer = _loss_trainer(model, tiny_tokenizer, tmp_path, bf16=bf16)
            precisions.append(trainer.accelerator.mixed_precision)
        rqvae_args = TrainingArguments(output_dir=str(tmp_path / "rqvae"), use_cpu=True, report_to="none")
        trainer = _loss_trainer(model, tiny_tokenizer, tmp_path, bf16=True)
        precisions.append(RQVAETrainer(model=rqvae, args=rqvae_args).accelerator.mixed_precision)
        assert precisions == ["no", "bf16", "no", "no"]
    finally:
        AcceleratorState._reset_state()


def test_predictions_come_back_in_row_order_with_grouped_training_batches(ml100k, tiny_tokenizer, tmp_path):
    """transformers evaluates with a shuffled length-grouped sampler when train_sampling_strategy="group_by_length"
    (the default here): per-row side data such as the seen / unseen flags was matched to other rows."""
    sequences, _ = ml100k
    torch.manual_seed(0)
    model = build_tiger_model(tiny_tokenizer, TigerModelArguments(**TINY_MODEL))
    split = tokenize_split(
        sequences["validation"].select(range(40)), tiny_tokenizer, cache_dir=tmp_path / "cache", split_name="val"
    )
    trainer = _loss_trainer(model, tiny_tokenizer, tmp_path, generation_num_beams=10, per_device_eval_batch_size=4)
    assert trainer.args.train_sampling_strategy == "group_by_length"
    output = trainer.predict(split)
    assert output.label_ids.tolist() == [list(labels) for labels in split["labels"]]
