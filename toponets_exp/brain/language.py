"""Language-localiser stimuli (sentences vs matched non-words) and the sentence > non-word selectivity map.

The contrast follows the fMRI language localiser (Fedorenko et al. 2010): units that respond more to sentences
than to strings of non-words of the same shape are "language-selective". The TopoNets paper applies it to
GPT-Neo's MLP units and asks whether the selective units cluster on the sheet (Moran's I of the t map).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toponets_exp.brain.map_statistics import t_map_morans
from toponets_exp.brain.stats import ArrayLike, as_float64, benjamini_hochberg, welch_t_pvalues
from toponets_exp.data.text import embedded_text
from toponets_exp.topo.sheet import sheet_shape

log = logging.getLogger(__name__)

VOWELS = "aeiou"
CONSONANTS = "bcdfghjklmnprstvwz"
# English letter frequencies (per cent) within each class, so generated strings look like English spelling.
VOWEL_FREQ = np.array([8.2, 12.7, 7.0, 7.5, 2.8])
CONSONANT_FREQ = np.array([1.5, 2.8, 4.3, 2.2, 2.0, 6.1, 0.15, 0.77, 4.0, 2.4, 6.7, 1.9, 6.0, 6.3, 9.1, 1.0, 2.4,
                           0.07])
STYLES = ("pronounceable", "random")
MAX_REDRAWS = 100

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_PROSE_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?(?:-[A-Za-z]+)*[,;]?")


def _letters(length: int, style: str, rng: np.random.Generator) -> str:
    """`length` lowercase letters: alternating consonant/vowel (random start) or uniform random letters."""
    if style == "random":
        return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=length))
    vowel = rng.random() < 0.3
    out = []
    for _ in range(length):
        pool, freq = (VOWELS, VOWEL_FREQ) if vowel else (CONSONANTS, CONSONANT_FREQ)
        out.append(pool[rng.choice(len(pool), p=freq / freq.sum())])
        vowel = not vowel
    return "".join(out)


def _shaped(token: str, letters: str) -> str:
    """`token` with its letters replaced in order by `letters`, keeping case, digits and punctuation in place."""
    fill = iter(letters)
    return "".join((next(fill).upper() if ch.isupper() else next(fill)) if ch.isalpha() else ch for ch in token)


def _words(text: str) -> set[str]:
    """Lowercased letter runs of a text."""
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text)}


def make_nonwords(sentences: Sequence[str], seed: int = 0, style: str = "pronounceable") -> list[str]:
    """For each sentence, a string of non-words of the same shape: same words, lengths, case and punctuation.

    Each whitespace-separated token keeps its non-letter characters (punctuation, apostrophes, digits) in place
    and has its letters replaced: ``style="pronounceable"`` alternates consonants and vowels drawn with English
    letter frequencies from a random start (e.g. "Tomebi kal."), ``style="random"`` draws letters uniformly. A
    draw that spells a word of `sentences` or of the CPython help text (an English vocabulary of ~3k words) is
    redrawn, up to 100 times. Deterministic for the same sentences, seed and style.
    """
    if style not in STYLES:
        raise ValueError(f"style={style!r} is not supported; use one of {', '.join(STYLES)}")
    vocabulary = _words(embedded_text()) | _words(" ".join(sentences))
    rng = np.random.default_rng(seed)
    out = []
    for sentence in sentences:
        tokens = []
        for token in sentence.split():
            n_letters = sum(ch.isalpha() for ch in token)
            letters = _letters(n_letters, style, rng)
            for _ in range(MAX_REDRAWS):
                if letters not in vocabulary:
                    break
                letters = _letters(n_letters, style, rng)
            tokens.append(_shaped(token, letters))
        out.append(" ".join(tokens))
    return out


def _indent(line: str) -> int:
    """Leading whitespace width of a line."""
    return len(line) - len(line.lstrip())


def _prose_sentences(text: str, min_words: int, max_words: int) -> list[str]:
    """Plain-prose sentences of a reST-like help text, in order.

    Paragraphs are split at blank lines and at indentation changes (definition terms, code and grammar blocks);
    a kept sentence starts with a capital, ends with a full stop, has min..max words, and every word is letters
    only (an apostrophe or hyphens inside, a trailing comma or semicolon allowed) — which drops code, names with
    underscores or dots, numbers, quotes and brackets.
    """
    kept = []
    for paragraph in re.split(r"\n\s*\n", text):
        for _, block in itertools.groupby(paragraph.split("\n"), key=_indent):
            joined = " ".join(line.strip() for line in block)
            for sentence in _SENTENCE_END.split(joined):
                sentence = sentence.strip()
                if not (sentence.endswith(".") and sentence[:1].isupper()):
                    continue
                words = sentence[:-1].split()
                if min_words <= len(words) <= max_words and all(_PROSE_WORD.fullmatch(w) for w in words):
                    kept.append(sentence)
    return kept


def embedded_sentences(n: int, seed: int = 0, min_words: int = 6, max_words: int = 20) -> list[str]:
    """`n` distinct English sentences from the CPython help topics (`pydoc_data.topics`), sampled by seed.

    The pool is every plain-prose sentence of `data.text.embedded_text()` (the topics in sorted order, see
    `_prose_sentences`), deduplicated in first-seen order; the sample is deterministic for a seed and Python version
    (the topics text is part of the interpreter).
    """
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"min_words={min_words}, max_words={max_words}: need 1 <= min_words <= max_words")
    pool = list(dict.fromkeys(_prose_sentences(embedded_text(), min_words, max_words)))
    if not 1 <= n <= len(pool):
        raise ValueError(f"n={n} sentences requested; the embedded text has {len(pool)} sentences of "
                          f"{min_words}-{max_words} words, so n must be in [1, {len(pool)}]")
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    return [pool[i] for i in order]


@dataclass(frozen=True)
class LanguageSelectivity:
    """Sentence vs non-word contrast on the sheet: Welch t, p, FDR mask, selective fractions, Moran's I of t (this
    project's rook convention and TopoLM's queen, row-standardised one)."""

    t: np.ndarray
    p: np.ndarray
    p_adjusted: np.ndarray
    significant: np.ndarray
    fraction_sentence_selective: float
    fraction_nonword_selective: float
    morans_i: float
    morans_i_topolm: float
    alpha: float

    def summary(self) -> dict[str, float]:
        """Scalar results for a report."""
        return {"fraction_sentence_selective": self.fraction_sentence_selective,
                "fraction_nonword_selective": self.fraction_nonword_selective,
                "morans_i": self.morans_i, "morans_i_topolm": self.morans_i_topolm, "alpha": self.alpha}


def language_selectivity(sentence_responses: ArrayLike, nonword_responses: ArrayLike,
                         sheet: tuple[int, int] | None = None, alpha: float = 0.05) -> LanguageSelectivity:
    """Per-unit Welch t (sentences − non-words), two-sided p, Benjamini–Hochberg at `alpha`, on the H×W sheet.

    Responses are (n_stimuli, units) with units = H·W (default sheet: `sheet_shape(units)`). A unit is
    sentence-selective when t > 0 and its FDR-adjusted p <= alpha, non-word-selective when t < 0 and likewise.
    Moran's I is NaN when the t map is not finite (a unit with zero variance but a mean difference).
    """
    a, b = as_float64(sentence_responses), as_float64(nonword_responses)
    t, p = welch_t_pvalues(a, b)
    h, w = sheet if sheet is not None else sheet_shape(t.size)
    if h * w != t.size:
        raise ValueError(f"sheet={tuple(sheet)} has {h * w} cells but the responses have {t.size} units")
    rejected, p_adj = benjamini_hochberg(p, alpha)
    spatial, topolm = t_map_morans(t.reshape(h, w))
    if not np.all(np.isfinite(t)):
        log.warning("infinite t-values (zero-variance units with a mean difference); Moran's I set to NaN")
    return LanguageSelectivity(
        t=t.reshape(h, w), p=p.reshape(h, w), p_adjusted=p_adj.reshape(h, w), significant=rejected.reshape(h, w),
        fraction_sentence_selective=float(np.mean(rejected & (t > 0))),
        fraction_nonword_selective=float(np.mean(rejected & (t < 0))),
        morans_i=spatial, morans_i_topolm=topolm, alpha=float(alpha),
    )
