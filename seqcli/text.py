"""Text -> token codes with Keras' ``TextVectorization``, run outside the model.

The vocabulary is fitted on the training texts only and saved in the run
(``preprocessing.json``): code 0 is padding, code 1 the out-of-vocabulary entry,
codes 2.. the training tokens, most frequent first. Lower-casing happens in
Python (``str.lower`` is Unicode-aware; Keras' ``"lower"`` only lower-cases
ASCII); punctuation stripping and splitting into words or characters are
Keras'. TensorFlow is imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqcli.backend import import_keras, import_tensorflow
from seqcli.sequences import Sequences

OOV_CODE = 1
CHUNK = 8192  # texts vectorized at a time, at most
CHUNK_CELLS = 2**24  # and at most this many cells of the padded (texts, longest) output: 128 MiB of int64


def strips_punctuation(options: dict[str, Any]) -> bool:
    """``strip_punctuation`` with its default resolved: words yes, characters no."""
    value = options["strip_punctuation"]
    return options["level"] == "word" if value is None else bool(value)


def describe(options: dict[str, Any]) -> str:
    """E.g. ``word-level, lower-cased, punctuation stripped``."""
    parts = [f"{options['level']}-level"]
    if options["lowercase"]:
        parts.append("lower-cased")
    if strips_punctuation(options):
        parts.append("punctuation stripped")
    return ", ".join(parts)


def _vectorizer(options: dict[str, Any], vocabulary: list[str] | None = None) -> Any:
    import_tensorflow()  # the layer needs it on either backend; first, so that it loads quietly
    keras = import_keras()
    return keras.layers.TextVectorization(
        max_tokens=options["max_tokens"] if vocabulary is None else None,
        standardize="strip_punctuation" if strips_punctuation(options) else None,
        split="whitespace" if options["level"] == "word" else "character",  # dense output (ragged needs the TensorFlow backend): 0 pads each chunk
        vocabulary=vocabulary[2:] if vocabulary is not None else None,  # Keras adds padding and OOV itself
    )


def _standardized(texts: list[str], options: dict[str, Any]) -> list[str]:
    return [t.lower() for t in texts] if options["lowercase"] else texts


def fit_vocabulary(texts: list[str], options: dict[str, Any]) -> list[str]:
    """The vocabulary of the (training) texts: ``["", oov, most frequent token, ...]``, at most ``max_tokens`` entries."""
    tf = import_tensorflow()

    layer = _vectorizer(options)
    layer.adapt(tf.data.Dataset.from_tensor_slices(tf.constant(_standardized(texts, options), dtype=tf.string)).batch(CHUNK))
    tokens = [str(t) for t in layer.get_vocabulary()[2:]]
    return ["", options["oov_token"] or "[UNK]", *tokens]


def to_codes(texts: list[str], vocabulary: list[str], options: dict[str, Any]) -> Sequences:
    """Each text as token codes, ``(tokens_i, 1)`` int64; tokens outside the vocabulary are code 1 (or dropped when ``oov_token`` is null)."""
    tf = import_tensorflow()
    layer = _vectorizer(options, vocabulary)
    values: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for start, end in _chunks([len(t) for t in texts]):
        padded = np.asarray(layer(tf.constant(_standardized(texts[start:end], options), dtype=tf.string))).astype(np.int64)  # (texts, longest)
        real = padded != 0  # code 0 is padding only: every token has a code >= 1
        flat, lengths = padded[real], real.sum(axis=1)
        if options["oov_token"] is None:
            keep = flat != OOV_CODE
            lengths = np.diff(np.concatenate([[0], np.cumsum(keep)])[np.concatenate([[0], np.cumsum(lengths)])])
            flat = flat[keep]
        values.append(flat)
        counts.append(lengths)
    if not values:
        return Sequences(np.zeros((0, 1), np.int64), np.zeros(0, np.int64))
    return Sequences(np.concatenate(values)[:, np.newaxis], np.concatenate(counts))


def _chunks(characters: list[int]) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of texts to vectorize together: at most :data:`CHUNK` texts, and their count times the
    longest one's characters (which bound its tokens) at most :data:`CHUNK_CELLS`.

    >>> _chunks([3, 3, 3])
    [(0, 3)]
    """
    ranges, start, longest = [], 0, 0
    for i, count in enumerate(characters):
        longest = max(longest, count + 1)
        if i > start and ((i - start + 1) * longest > CHUNK_CELLS or i - start == CHUNK):
            ranges.append((start, i))
            start, longest = i, count + 1
    return [*ranges, (start, len(characters))] if characters else []


def oov_share(codes: Sequences) -> float:
    """Fraction of all tokens that are out of vocabulary (code 1)."""
    return float((codes.values == OOV_CODE).mean()) if len(codes.values) else 0.0
