"""Our length-grouped sampler and packed batches against transformers' own (what they share, what they lack)."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import DataCollatorWithFlattening
from transformers.trainer_pt_utils import DistributedLengthGroupedSampler, LengthGroupedSampler

from datamodules import EarlyCueClassification, RightContextNER
from datamodules.samplers import LengthGroupedBatchSampler, SortedBatchSampler

BATCH = 8


@pytest.fixture(scope="module")
def lengths() -> list[int]:
    """4,003 skewed lengths (5..200 tokens), like a text classification set."""
    uniform = torch.rand(4003, generator=torch.Generator().manual_seed(0))
    return (5 - 20 * uniform.log()).clamp_max(200).long().tolist()  # exponential, mean 25


def padding(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of the padded batch tokens that are padding."""
    real = sum(lengths[i] for batch in batches for i in batch)
    return 1 - real / sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def library_batches(lengths: list[int], seed: int) -> list[list[int]]:
    indices = list(LengthGroupedSampler(BATCH, lengths=lengths, generator=torch.Generator().manual_seed(seed)))
    return [indices[i : i + BATCH] for i in range(0, len(indices), BATCH)]


def test_groups_like_transformers_but_shuffles_the_batches(lengths):
    """Same grouping (same batches at the same seed, bar its longest-example swap; same padding), but the library
    keeps each mega-batch's batches longest first, a sawtooth curriculum; ours are shuffled."""
    ours = list(LengthGroupedBatchSampler(lengths, BATCH, seed=3))
    theirs = library_batches(lengths, seed=3)
    assert len({frozenset(b) for b in ours} & {frozenset(b) for b in theirs}) >= len(ours) - 2
    ours_padding = padding(ours, lengths)  # 5.4% here, 59% with random batches
    assert ours_padding < 0.06 and ours_padding == pytest.approx(padding(theirs, lengths), abs=0.002)
    assert padding(list(LengthGroupedBatchSampler(lengths, BATCH, seed=3, mega_batch=1)), lengths) > 0.5

    def non_increasing(batches: list[list[int]]) -> float:
        longest = [max(lengths[i] for i in batch) for batch in batches]
        return sum(a >= b for a, b in zip(longest, longest[1:])) / (len(longest) - 1)

    assert non_increasing(theirs) > 0.95 and non_increasing(ours) < 0.7


def test_resumes_mid_epoch_where_the_library_has_no_state(lengths):
    sampler = LengthGroupedBatchSampler(lengths, BATCH, seed=3)
    sampler.set_epoch(2)
    epoch = list(sampler)
    interrupted = LengthGroupedBatchSampler(lengths, BATCH, seed=3)
    interrupted.set_epoch(2)
    for consumed, _ in enumerate(interrupted, start=1):
        if consumed == 40:
            break
    resumed = LengthGroupedBatchSampler(lengths, BATCH, seed=0)  # seed and position come from the state
    resumed.load_state_dict(interrupted.state_dict())
    assert list(resumed) == epoch[40:] and len(resumed) == len(epoch)
    assert not any(hasattr(LengthGroupedSampler, name) for name in ("state_dict", "load_state_dict", "set_epoch"))


def test_processes_share_whole_batches_and_the_rest_is_counted_where_the_library_repeats_examples(lengths):
    theirs = [
        i
        for r in range(4)
        for i in DistributedLengthGroupedSampler(BATCH, lengths=lengths, num_replicas=4, rank=r, seed=3)
    ]
    assert len(theirs) - len(set(theirs)) == 1  # 4,003 examples padded to 4,004 by repeating one
    for replicas in (3, 4):  # 501 batches: 3 processes get 167 each; 4 get 125 and one batch is left out
        shards = [
            LengthGroupedBatchSampler(lengths, BATCH, seed=3, num_replicas=replicas, rank=r) for r in range(replicas)
        ]
        seen = [i for shard in shards for batch in shard for i in batch]
        left_batches, left_examples = shards[0].left_out()
        assert len(seen) == len(set(seen)) == len(lengths) - left_examples
        assert (left_batches, len({len(shard) for shard in shards})) == ((0, 1) if replicas == 3 else (1, 1))


@pytest.mark.parametrize(("examples", "batch", "replicas"), [(100, 32, 2), (16, 32, 2), (200, 32, 16), (17, 4, 16)])
def test_every_process_gets_evaluation_batches_and_every_example_once(examples, batch, replicas):
    """Whole batches per process, and one smaller batch each where the split has fewer batches than processes
    (Lightning stops a process without batches: a 200-example validation subset on 2 nodes of 8 GPUs)."""
    lengths = [(7 * i) % 23 + 1 for i in range(examples)]
    shards = [SortedBatchSampler(lengths, batch, replicas, rank) for rank in range(replicas)]
    seen = [i for shard in shards for b in shard for i in b]
    assert sorted(seen) == list(range(examples)) and min(len(shard) for shard in shards) >= 1
    assert max(len(b) for shard in shards for b in shard) <= batch
    with pytest.raises(ValueError, match="3 evaluation examples cannot be shared by 4 processes"):
        SortedBatchSampler([1, 2, 3], batch, 4, 0)


def test_left_out_training_batches_are_counted_in_the_log(caplog, monkeypatch):
    data = RightContextNER(num_train=36, num_val=8, batch_size=4)  # 9 batches for 2 processes: 1 left out
    data.setup("fit")
    monkeypatch.setattr(data, "_distributed", lambda: (2, 0))
    with caplog.at_level(logging.WARNING, logger="datamodules.base"):
        loader = data.train_dataloader()
    assert len(loader) == 4
    assert "train: each epoch leaves out 1 of its batches (4 examples in epoch 0" in caplog.text
    assert "the 2 processes get 4 batches each" in caplog.text


def test_packed_fields_match_transformers_flattening_which_lacks_what_label_supervision_needs():
    data = RightContextNER(num_train=16, num_val=8, pack_sequences=True)  # no BOS: word 1 is token 0
    data.setup("fit")
    features = [data.datasets["train"][i] for i in range(4)]
    ours = data.collate(features)
    theirs = DataCollatorWithFlattening(return_seq_idx=True)(features)
    assert torch.equal(theirs["input_ids"], ours["packed_input_ids"])
    assert torch.equal(theirs["position_ids"], ours["packed_position_ids"])
    assert torch.equal(theirs["seq_idx"].long(), ours["packed_sequence_ids"])
    assert set(theirs) == {"input_ids", "labels", "position_ids", "seq_idx"}  # no mask, word_starts, example_ids
    real = ours["labels"][ours["attention_mask"].bool()]  # (S,) our token labels in packed order
    first = torch.cat([torch.tensor([0]), ours["attention_mask"].sum(1).cumsum(0)[:-1]])  # each sequence's start
    assert (real[first] != -100).all() and (theirs["labels"][0, first] == -100).all()  # first labels lost
    kept = torch.ones_like(real, dtype=torch.bool).index_fill(0, first, False)
    assert torch.equal(theirs["labels"][0, kept], real[kept])
    sequences = EarlyCueClassification(num_train=8, num_val=8)
    sequences.setup("fit")
    with pytest.raises(TypeError):  # one label per example
        DataCollatorWithFlattening()([sequences.datasets["train"][i] for i in range(2)])
