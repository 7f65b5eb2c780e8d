"""Loss on the reply only, checked on real tokens of the tiny model's Qwen3 chat template."""

from __future__ import annotations

import pytest

from replyassets.training.data import DataError, prompt_ids, tokenize_row, tokenize_rows
from replyassets_tests.training.conftest import make_row


@pytest.fixture(scope="module")
def tok(tiny_setup):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_setup / "model")


def test_only_reply_and_end_token_are_labelled(tok):
    row = make_row(3, tweet="Is RAG dead? 🤔", reply="Not dead, just boring now. The hard part was always retrieval quality 🙂")
    ex = tokenize_row(tok, row, max_len=512)
    ids, labels = ex["input_ids"], ex["labels"]
    assert len(ids) == len(labels)
    learned = [i for i, lab in zip(ids, labels) if lab != -100]
    masked = [i for i, lab in zip(ids, labels) if lab == -100]
    # labels equal the inputs where they are set (causal shift happens in the model)
    assert all(lab in (-100, i) for i, lab in zip(ids, labels))
    # exactly the reply and its end token are learned, nothing after the end token
    assert tok.decode(learned) == row["completion"][0]["content"] + "<|im_end|>"
    assert ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    # the prompt, the assistant header and the empty think block are all masked
    masked_text = tok.decode(masked)
    assert masked_text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    think = {tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")}
    assert think <= set(ids)
    assert not think & set(learned)
    # the full sequence is the real template's rendering (minus its trailing newline)
    assert tok.decode(ids) + "\n" == row["text"]
    # the masked part is exactly what generation sees at inference
    assert masked == prompt_ids(tok, row["prompt"])


def test_messages_only_rows_give_the_same_labels(tok):
    row = make_row(5)
    only_messages = {"messages": row["messages"]}
    assert tokenize_row(tok, row, 512) == tokenize_row(tok, only_messages, 512)


def test_trl_keeps_our_labels(tok, tiny_setup, tmp_path):
    """TRL's SFTTrainer treats pre-tokenized rows as processed and keeps the labels as given."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    rows = tokenize_rows(tok, [make_row(i) for i in range(4)], 512)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_setup / "model"),
        args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], max_length=512),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tok,
    )
    prepared = trainer.train_dataset
    assert [list(x) for x in prepared["labels"]] == [r["labels"] for r in rows]
    batch = trainer.data_collator([prepared[0], prepared[1]])
    n_learned = sum(lab != -100 for lab in rows[0]["labels"]) + sum(lab != -100 for lab in rows[1]["labels"])
    assert int((batch["labels"] != -100).sum()) == n_learned


def test_truncation_and_bad_rows(tok):
    row = make_row(1)
    ex = tokenize_row(tok, row, max_len=20)  # the prompt alone is longer: no reply token left
    assert len(ex["input_ids"]) == 20 and all(lab == -100 for lab in ex["labels"])
    with pytest.raises(DataError, match="no row has a reply token"):
        tokenize_rows(tok, [row], max_len=20)
    with pytest.raises(DataError, match="needs `prompt`"):
        tokenize_row(tok, {"text": "x"}, 512)
    with pytest.raises(DataError, match="non-empty assistant"):
        tokenize_row(tok, {"prompt": row["prompt"], "completion": [{"role": "assistant", "content": " "}]}, 512)
