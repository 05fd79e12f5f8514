"""Prepared image splits: class folders converted once into litdata chunks of (pre-resized JPEG bytes, label).

A prepared split is a directory of litdata chunks with its index.json and prepared.json (the classes, the image
count and the settings it was made with). It is written as `<split>.partial/` and renamed to `<split>/` once
complete, so a directory that has a split's name is a finished split. The images are written chunk by chunk in
the folder order (ImageFolder's, so labels and indices match the folder path); a chunk counts as written when its
index file is, and an interrupted conversion continues after its last complete chunk.

The chunks are written here with litdata's BinaryWriter, not its optimize(): optimize orders the images by worker
and resumes only with the same number of workers; here the order and the chunking depend on the files alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from litdata import StreamingDataset, complete_dataset
from litdata.streaming.writer import BinaryWriter
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from tqdm import tqdm

from toponets_exp.data.jpeg import decode_image, encode_image
from toponets_exp.io import write_json

log = logging.getLogger(__name__)

FORMAT = 1  # version of the layout below; a prepared split of another version is not read
META = "prepared.json"  # a finished split's description, written last
PLAN = "plan.json"  # an unfinished conversion's description, to resume it only with the same files and settings
INDEX = "index.json"  # litdata's index of the chunks
IMAGES_PER_CHUNK = 2048  # ≈ 30-60 MB of JPEG at a 256-400 px longer side
CONTENT_KEYS = ("format", "max_side", "quality", "classes", "images", "files_sha256")  # what a split holds


class PreparedDataError(ValueError):
    """Source folders or a prepared directory that cannot be used as asked (the message names the path)."""


def class_folder(source: Path) -> ImageFolder:
    """The images and labels of a split's class folders, as the folder path reads them."""
    try:
        return ImageFolder(str(source))
    except FileNotFoundError as err:
        raise PreparedDataError(f"{source}: {err}") from err


def conversion_plan(folder: ImageFolder, max_side: int, quality: int, images_per_chunk: int) -> dict[str, Any]:
    """What converting `folder` produces: settings, classes, image count and a digest of its file list."""
    listing = "\n".join(f"{Path(path).relative_to(folder.root)}\t{label}" for path, label in folder.samples)
    return {"format": FORMAT, "max_side": max_side, "quality": quality, "images_per_chunk": images_per_chunk,
            "classes": list(folder.classes), "images": len(folder.samples),
            "files_sha256": hashlib.sha256(listing.encode()).hexdigest()}


def is_prepared(split_dir: Path) -> bool:
    """Whether `split_dir` is a finished prepared split."""
    return (split_dir / META).is_file() and (split_dir / INDEX).is_file()


def read_meta(split_dir: Path) -> dict[str, Any]:
    """prepared.json of a finished prepared split."""
    if not is_prepared(split_dir):
        raise PreparedDataError(f"{split_dir} is not a prepared split (it has no {META} and {INDEX})")
    meta = json.loads((split_dir / META).read_text())
    if meta.get("format") != FORMAT:
        raise PreparedDataError(f"{split_dir} was prepared in format {meta.get('format')}, this version reads "
                                f"format {FORMAT}; prepare it again into another directory")
    return meta


def partial_dir(split_dir: Path) -> Path:
    """Where the split is written until it is complete."""
    return split_dir.with_name(split_dir.name + ".partial")


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'key: old -> new' for the content keys that differ (classes and file lists summarised)."""
    def shown(key: str, value: Any) -> Any:
        return f"{len(value)} classes" if key == "classes" else value

    return [f"{key}: {shown(key, old.get(key))} -> {shown(key, new[key])}" for key in CONTENT_KEYS
            if old.get(key) != new[key]]


def _done_chunks(partial: Path, plan: dict[str, Any], chunks: int) -> set[int]:
    """Chunks already written by an unfinished conversion with this plan; starts afresh for another plan."""
    if partial.is_dir():
        try:
            old = json.loads((partial / PLAN).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            old = None
        if old == plan:
            for scratch in partial.glob(".chunk-*"):
                shutil.rmtree(scratch)
            if (partial / INDEX).is_file():  # merged already: only the rename was left
                return set(range(chunks))
            return {int(p.name.split(".")[0]) for p in partial.glob("*.index.json")}
        log.warning("%s: an unfinished conversion of other files or settings; starting again", partial)
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(partial / PLAN, plan)
    return set()


def _write_chunk(partial: Path, k: int, samples: Iterable[tuple[bytes, int]], images_per_chunk: int) -> None:
    """Chunk `k`: written aside, its data moved in, then its index file, which marks it complete."""
    scratch = partial / f".chunk-{k}"
    writer = BinaryWriter(str(scratch), chunk_size=images_per_chunk, chunk_index=k)
    for j, sample in enumerate(samples):
        writer.add_item(j, sample)
    writer.done()
    (index,) = scratch.glob("*.index.json")
    for path in scratch.iterdir():
        if path != index:
            os.replace(path, partial / path.name)
    os.replace(index, partial / f"{k}.index.json")  # `{k}.index.json`: litdata merges these in natural order
    scratch.rmdir()


@contextmanager
def _image_map(num_workers: int) -> Iterator[Callable[..., Iterator[Any]]]:
    """An ordered map: in this process (0 workers) or over a pool of `num_workers` processes (the platform's
    default start method; with fork, Linux before Python 3.14, no worker imports the project again)."""
    if num_workers == 0:
        yield map
        return
    with multiprocessing.Pool(num_workers) as pool:
        yield functools.partial(pool.imap, chunksize=16)


def prepare_split(folder: ImageFolder, dest: Path, max_side: int, quality: int, num_workers: int = 0,
                  images_per_chunk: int = IMAGES_PER_CHUNK) -> bool:
    """Convert `folder` into the prepared split `dest`; False (nothing written) if `dest` holds it already.

    A finished `dest` of other files or settings, or a `dest` that is not a prepared split, is an error and is
    left untouched.
    """
    plan = conversion_plan(folder, max_side, quality, images_per_chunk)
    if is_prepared(dest):
        changed = _differences(read_meta(dest), plan)
        if changed:
            raise PreparedDataError(f"{dest} was prepared from other files or settings ({'; '.join(changed)}); "
                                    "it is kept: prepare into another directory or delete it")
        return False
    if dest.exists():
        raise PreparedDataError(f"{dest} exists and is not a prepared split; it is left as it is")
    partial = partial_dir(dest)
    chunks = [folder.samples[start:start + images_per_chunk] for start in range(0, plan["images"], images_per_chunk)]
    done = _done_chunks(partial, plan, len(chunks))
    todo = [k for k in range(len(chunks)) if k not in done]
    if done:
        log.info("%s: resuming after %d of %d chunks", partial, len(done), len(chunks))
    encode = functools.partial(encode_image, max_side=max_side, quality=quality)
    left = sum(len(chunks[k]) for k in todo)
    with _image_map(num_workers) as image_map, tqdm(total=plan["images"], initial=plan["images"] - left,
                                                    unit="img", desc=f"prepare {dest.name}") as bar:
        encoded = _one_ahead(image_map, encode, [[path for path, _ in chunks[k]] for k in todo])
        for k, images in zip(todo, encoded):
            samples = zip(images, (label for _, label in chunks[k]))
            _write_chunk(partial, k, _counted(samples, bar), images_per_chunk)
    complete_dataset(str(partial))  # the chunks' index files merged into index.json, in chunk order
    write_json(partial / META, {**{key: plan[key] for key in CONTENT_KEYS}, "chunks": len(chunks),
                                "source": str(folder.root)})
    (partial / PLAN).unlink()
    os.replace(partial, dest)
    return True


def _one_ahead(image_map: Callable[..., Iterator[bytes]], encode: Callable[[str], bytes],
               groups: list[list[str]]) -> Iterator[Iterator[bytes]]:
    """The encoded images of each group of paths, the next group's started already: the pool stays busy while a
    chunk is written, and at most two chunks of images wait in memory."""
    upcoming = image_map(encode, groups[0]) if groups else None
    for i in range(len(groups)):
        current, upcoming = upcoming, image_map(encode, groups[i + 1]) if i + 1 < len(groups) else None
        yield current


def _counted(samples: Iterable[tuple[bytes, int]], bar: tqdm) -> Iterator[tuple[bytes, int]]:
    """`samples`, advancing the progress bar by one for each."""
    for sample in samples:
        yield sample
        bar.update()


class PreparedImages(Dataset):
    """(RGB uint8 (3, H, W) tensor, label) items of a prepared split, read from its chunks in place."""

    def __init__(self, split_dir: str | Path) -> None:
        self.split_dir = Path(split_dir)
        self.meta = read_meta(self.split_dir)
        self.classes: list[str] = self.meta["classes"]
        self._chunks: StreamingDataset | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.meta["images"])

    def _stream(self) -> StreamingDataset:
        """The split's litdata dataset, opened once in each process (every DataLoader worker opens its own)."""
        if self._pid != os.getpid():
            self._chunks, self._pid = StreamingDataset(str(self.split_dir), batch_decode=0), os.getpid()
        return self._chunks

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        data, label = self._stream()[i]
        return decode_image(data), int(label)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_chunks": None, "_pid": None}
