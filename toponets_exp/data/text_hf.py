"""Hugging Face `datasets` text corpora (OpenWebText, FineWeb-Edu, Wikipedia, local files) as packed LM blocks."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from toponets_exp.data.resumable import check_loader_args, eval_loader, rank_share, train_loader
from toponets_exp.data.text import BlockDataset, check_lm_sizes
from toponets_exp.data.tokenizer import TextTokenizer, load_tokenizer
from toponets_exp.errors import ConfigError

log = logging.getLogger(__name__)
FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".txt": "text", ".parquet": "parquet", ".csv": "csv",
                 ".arrow": "arrow"}
SPLITS = ("train", "val", "test")


def pack_stream(token_lists: Iterable[list[int]], block_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) blocks from a stream of token lists, exactly as `BlockDataset` cuts their concatenation."""
    buffer: list[int] = []
    for ids in token_lists:
        buffer.extend(ids)
        while len(buffer) > block_size:
            chunk = torch.tensor(buffer[:block_size + 1], dtype=torch.long)
            del buffer[:block_size]
            yield chunk[:-1], chunk[1:]


def digest(text: str) -> bytes:
    """A process-independent fingerprint of a document's text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class PackedStream(IterableDataset):
    """Streaming documents → tokens (+ end-of-text) → blocks; this rank reads a disjoint shard of the documents and
    drops those whose text fingerprint is in `exclude` (the held-out documents)."""

    def __init__(self, source: Any, tokenizer: TextTokenizer, text_column: str, block_size: int, rank: int = 0,
                 world_size: int = 1, repeat: bool = False, exclude: frozenset[bytes] = frozenset(),
                 docs_per_batch: int = 64) -> None:
        self.source, self.tokenizer, self.text_column = source, tokenizer, text_column
        self.block_size, self.rank, self.world_size = block_size, rank, world_size
        self.repeat, self.exclude, self.docs_per_batch = repeat, exclude, docs_per_batch

    def shard(self) -> Any:
        """This rank's documents: `split_dataset_by_node` (whole shards when they divide evenly, else 1 in N docs)."""
        if self.world_size == 1:
            return self.source
        from datasets.distributed import split_dataset_by_node

        return split_dataset_by_node(self.source, rank=self.rank, world_size=self.world_size)

    def _token_lists(self) -> Iterator[list[int]]:
        """Each document's tokens followed by the end-of-text id; passes repeat (new shuffle epoch) if `repeat`."""
        shard, epoch = self.shard(), 0
        eos = [] if self.tokenizer.eos_id is None else [self.tokenizer.eos_id]
        while True:
            if hasattr(shard, "set_epoch"):
                shard.set_epoch(epoch)
            texts: list[str] = []
            for doc in shard:
                text = doc[self.text_column]
                if self.exclude and digest(text) in self.exclude:
                    continue
                texts.append(text)
                if len(texts) == self.docs_per_batch:
                    yield from (ids + eos for ids in self.tokenizer.encode_batch(texts))
                    texts = []
            if texts:
                yield from (ids + eos for ids in self.tokenizer.encode_batch(texts))
            if not self.repeat:
                return
            epoch += 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(input, target) blocks of this rank's documents."""
        return pack_stream(self._token_lists(), self.block_size)


def _as_list(files: str | Sequence[str]) -> list[str]:
    """`data_files` as a list of paths or glob patterns (user paths expanded)."""
    return [os.path.expanduser(f) for f in ([files] if isinstance(files, str) else files)]


class HFTextDataModule(L.LightningDataModule):
    """A `datasets` text corpus tokenized with a local BPE and packed into blocks; the first `val_docs` and next
    `test_docs` documents are held out. Map-style (DistributedSampler under DDP) or streaming (rank-sharded)."""

    def __init__(self, tokenizer_path: str | None, vocab_size: int, block_size: int, hf_name: str | None = None,
                 hf_config: str | None = None, split: str = "train", data_files: str | list[str] | None = None,
                 text_column: str = "text", streaming: bool = False, val_docs: int = 1000, test_docs: int = 1000,
                 eos_token: str | None = "<|endoftext|>", shuffle_buffer: int = 10_000, seed: int = 0,
                 batch_size: int = 8, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        self.tokenizer = load_tokenizer(tokenizer_path, eos_token)
        check_lm_sizes(vocab_size, block_size, self.tokenizer.vocab_size)
        if hf_name is None and not data_files:
            raise ConfigError("no text source: set data.hf_name (a Hub dataset such as HuggingFaceFW/fineweb-edu, or a "
                              "local dataset directory) or data.data_files=/path/to/*.jsonl (json, txt, parquet, csv)")
        if min(val_docs, test_docs) < 1:
            raise ConfigError(f"data.val_docs={val_docs} and data.test_docs={test_docs} must be >= 1")
        self.save_hyperparameters()
        self.splits: dict[str, Any] = {}

    def load_source(self) -> Any:
        """The raw document dataset (map-style `Dataset` or streaming `IterableDataset`)."""
        import datasets

        hp = self.hparams
        kwargs: dict[str, Any] = {"split": hp.split, "streaming": hp.streaming}
        if hp.data_files:
            files = _as_list(hp.data_files)
            suffix = Path(files[0]).suffix.lower()
            builder = hp.hf_name or FILE_BUILDERS.get(suffix)
            local = builder in FILE_BUILDERS.values()  # else: files inside the Hub repository `hf_name`
            if local and not any("://" in f or glob.glob(f) for f in files):
                raise ConfigError(f"data.data_files={files} matches no file; give existing local text files")
            if builder is None:
                raise ConfigError(f"data.data_files has suffix {suffix!r}: set data.hf_name to its builder "
                                  f"({', '.join(sorted(set(FILE_BUILDERS.values())))}) or use one of "
                                  f"{', '.join(FILE_BUILDERS)}")
            return datasets.load_dataset(builder, data_files={hp.split: files}, **kwargs)
        try:
            if (Path(hp.hf_name) / "state.json").exists() or (Path(hp.hf_name) / "dataset_dict.json").exists():
                saved = datasets.load_from_disk(hp.hf_name)
                saved = saved[hp.split] if isinstance(saved, datasets.DatasetDict) else saved
                return saved.to_iterable_dataset() if hp.streaming else saved
            return datasets.load_dataset(hp.hf_name, hp.hf_config, **kwargs)
        except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
            raise ConfigError(f"data.hf_name={hp.hf_name!r} (config {hp.hf_config!r}) could not be loaded ({err}); "
                              "with no network, point data.data_files at local files or data.hf_name at a local "
                              "dataset directory") from err

    def _check_columns(self, source: Any) -> None:
        """The text column must exist."""
        names = source.column_names
        if names is not None and self.hparams.text_column not in names:
            raise ConfigError(f"data.text_column={self.hparams.text_column!r} is not a column of the dataset; "
                              f"columns: {', '.join(names)}")

    def _blocks(self, docs: list[str]) -> BlockDataset:
        """Documents tokenized, each followed by end-of-text, concatenated and cut into blocks."""
        eos = [] if self.tokenizer.eos_id is None else [self.tokenizer.eos_id]
        dtype = np.uint16 if self.hparams.vocab_size <= 2 ** 16 else np.uint32
        ids = [np.asarray(t + eos, dtype=dtype) for t in self.tokenizer.encode_batch(docs)]
        return BlockDataset(np.concatenate(ids), self.hparams.block_size)

    def _map_style(self, source: Any) -> dict[str, BlockDataset]:
        """Tokenize every document once; the first val_docs are val, the next test_docs test, the rest train."""
        hp = self.hparams
        held = hp.val_docs + hp.test_docs
        if len(source) <= held:
            raise ConfigError(f"the dataset has {len(source)} documents, not more than data.val_docs + data.test_docs "
                              f"= {held}")
        ranges = {"val": range(hp.val_docs), "test": range(hp.val_docs, held), "train": range(held, len(source))}
        return {name: self._blocks(source.select(ranges[name])[hp.text_column]) for name in SPLITS}

    def _streaming(self, source: Any) -> dict[str, Dataset]:
        """The stream's first val_docs / test_docs documents, read once, are the fixed val / test sets (the same on
        any number of devices); training streams every other document (dropped by text fingerprint), shuffled
        within a buffer, sharded across ranks and repeated without end."""
        hp = self.hparams
        try:
            held = [doc[hp.text_column] for doc in islice(source, hp.val_docs + hp.test_docs)]
        except KeyError as err:
            raise ConfigError(f"data.text_column={hp.text_column!r} is not a field of the streamed documents") from err
        if len(held) < hp.val_docs + hp.test_docs:
            raise ConfigError(f"the stream has only {len(held)} documents, fewer than data.val_docs + data.test_docs")
        world, rank = rank_share(self)
        train = PackedStream(source.shuffle(seed=hp.seed, buffer_size=hp.shuffle_buffer), self.tokenizer,
                             hp.text_column, hp.block_size, rank, world, repeat=True,
                             exclude=frozenset(map(digest, held)))
        return {"val": self._blocks(held[:hp.val_docs]), "test": self._blocks(held[hp.val_docs:]), "train": train}

    def setup(self, stage: str | None = None) -> None:
        """Build the splits once (idempotent)."""
        hp = self.hparams
        if hp.streaming and stage == "fit" and self.trainer is not None and self.trainer.max_steps < 0:
            raise ConfigError("data.streaming=true trains on an endless token stream: set trainer.max_steps")
        if self.splits:
            return
        source = self.load_source()
        self._check_columns(source)
        self.splits = self._streaming(source) if hp.streaming else self._map_style(source)
        log.info("text data: %s", ", ".join(f"{k} {len(v)} blocks" if isinstance(v, BlockDataset) else f"{k} stream"
                                           for k, v in self.splits.items()))

    def _loader(self, name: str) -> DataLoader:
        """The DataLoader of one split (map-style training: shuffled per epoch and resumable mid-epoch)."""
        hp = self.hparams
        if name == "train" and not hp.streaming:
            return train_loader(self, self.splits[name], hp.batch_size, hp.num_workers, hp.pin_memory)
        return eval_loader(self, self.splits[name], hp.batch_size, hp.num_workers, hp.pin_memory)

    def train_dataloader(self) -> DataLoader:
        """Training batches."""
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self._loader("test")
