"""The "next-item-recommendation" pipeline: registration, inputs, outputs, batching, item text, errors."""

import json

import pytest
from hub_helpers import ITEM_IDS, ITEM_TEXTS, REPO_ID, build_hub_cache, use_hub_cache
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import hf_tiger  # noqa: F401  (registers the task)
from hf_tiger import NextItemRecommendationPipeline, TigerForConditionalGeneration
from hf_tiger.models.tiger import UnknownItemError

HISTORIES = [[ITEM_IDS[1], ITEM_IDS[2]], [ITEM_IDS[5]], [ITEM_IDS[7], ITEM_IDS[0], ITEM_IDS[3]]]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return build_hub_cache(tmp_path_factory)


@pytest.fixture
def recommender_pipe(monkeypatch, hub):
    use_hub_cache(monkeypatch, hub["cache"])
    return pipeline("next-item-recommendation", model=REPO_ID, device="cpu")


def test_task_is_registered():
    task = PIPELINE_REGISTRY.supported_tasks["next-item-recommendation"]
    assert task["impl"] is NextItemRecommendationPipeline


def test_pipeline_by_repo_id(recommender_pipe, hub):
    pipe = recommender_pipe
    assert isinstance(pipe, NextItemRecommendationPipeline)
    assert isinstance(pipe.model, TigerForConditionalGeneration)
    out = pipe(HISTORIES[0], top_k=5)
    items, scores = hub["recommender"].recommend([HISTORIES[0]], top_k=5, return_scores=True)
    assert [r["item_id"] for r in out] == items[0]
    assert [r["score"] for r in out] == pytest.approx(scores[0], abs=1e-5)
    assert [r["score"] for r in out] == sorted((r["score"] for r in out), reverse=True)
    assert [r["text"] for r in out] == [ITEM_TEXTS[r["item_id"]] for r in out]  # from the repo's items.jsonl
    assert len({r["item_id"] for r in out}) == 5 and all(r["item_id"] in ITEM_IDS for r in out)


def test_batches_and_dict_inputs(recommender_pipe, hub):
    pipe = recommender_pipe
    expected = hub["recommender"].recommend(HISTORIES, top_k=3)
    one_by_one = pipe(HISTORIES, top_k=3)
    assert [[r["item_id"] for r in row] for row in one_by_one] == expected
    batched = pipe(HISTORIES, top_k=3, batch_size=2)
    assert [[r["item_id"] for r in row] for row in batched] == expected
    for row_batched, row_single in zip(batched, one_by_one):  # padding changes scores only by rounding
        assert [r["score"] for r in row_batched] == pytest.approx([r["score"] for r in row_single], abs=1e-5)

    with_user = pipe({"history": HISTORIES[2], "user_id": "user-42"}, top_k=3)
    expected_user = hub["recommender"].recommend([HISTORIES[2]], top_k=3, user_ids=["user-42"])
    assert [r["item_id"] for r in with_user] == expected_user[0]


def test_top_k_larger_than_catalogue_gives_every_item_once(recommender_pipe):
    out = recommender_pipe(HISTORIES[1], top_k=50, num_beams=50)
    assert sorted(r["item_id"] for r in out) == sorted(ITEM_IDS)


def test_return_text_and_item_texts_override(hub):
    recommender = hub["recommender"]
    pipe = recommender.pipeline(return_text=False)
    assert all("text" not in r for r in pipe(HISTORIES[0], top_k=3))
    custom = NextItemRecommendationPipeline(
        model=recommender.model, tokenizer=recommender.tokenizer, item_texts={ITEM_IDS[0]: "zero"}, device="cpu"
    )
    out = custom(HISTORIES[0], top_k=len(ITEM_IDS))
    assert [r.get("text") for r in out if r["item_id"] == ITEM_IDS[0]] == ["zero"]
    assert all("text" not in r for r in out if r["item_id"] != ITEM_IDS[0])


def test_bad_inputs(recommender_pipe):
    with pytest.raises(ValueError, match="empty"):
        recommender_pipe([])
    with pytest.raises(ValueError, match="empty history"):
        recommender_pipe([[ITEM_IDS[0]], []])
    with pytest.raises(UnknownItemError, match="NOT-AN-ITEM"):
        recommender_pipe([ITEM_IDS[0], "NOT-AN-ITEM"])
    with pytest.raises(TypeError, match="int or str"):
        recommender_pipe([[1.5, 2.5]])
    with pytest.raises(ValueError, match="'history'"):
        recommender_pipe({"items": [ITEM_IDS[0]]})
    with pytest.raises(ValueError, match="top_k"):
        recommender_pipe(ITEM_IDS[:2], top_k=0)
    with pytest.raises(TypeError, match="unexpected"):
        recommender_pipe(ITEM_IDS[:2], temperature=0.7)


def test_pipeline_save_pretrained_ships_its_code(tmp_path, hub):
    pipe = hub["recommender"].pipeline()
    pipe.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["custom_pipelines"]["next-item-recommendation"]["impl"] == (
        "pipeline_tiger.NextItemRecommendationPipeline"
    )
    assert (tmp_path / "saved" / "pipeline_tiger.py").read_text() == open(hf_tiger.pipelines.__file__).read()
    rows = [json.loads(line) for line in (tmp_path / "saved" / "items.jsonl").read_text().splitlines()]
    assert {r["item_id"]: r["text"] for r in rows} == ITEM_TEXTS
    reloaded = pipeline("next-item-recommendation", model=str(tmp_path / "saved"), device="cpu")
    assert reloaded(HISTORIES[0], top_k=4) == pipe(HISTORIES[0], top_k=4)


def test_a_bare_string_is_a_clear_error(recommender_pipe):
    with pytest.raises(TypeError, match="list of item ids"):
        recommender_pipe(ITEM_IDS[0])
