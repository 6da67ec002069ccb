"""The n-gram bag branch (``model.ngrams``, :mod:`seqcli.ngrams`): the n-gram codes and the vector computed by hand,
padding on either side, the int32 bound, saving, and what ``inspect-shapes`` says. Padding invariance inside a whole
model is tested with the other pieces (tests/test_model_pieces.py), the spec's rules with the others (tests/test_spec.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqcli import ngrams
from seqcli.backend import import_keras


def _layer(*, longest: int, buckets: int, dim: int = 2, multiplier: int | None = None) -> object:
    layer = ngrams.layer_class()(longest=longest, buckets=buckets, dim=dim, multiplier=multiplier)
    layer.build((None, None))
    return layer


def _numpy(value: object) -> np.ndarray:
    return np.asarray(import_keras().ops.convert_to_numpy(value))


def _row(codes: list[int], *, longest: int, buckets: int, multiplier: int) -> int:
    """An n-gram's row by the module docstring's formula, in Python's unbounded integers."""
    number = 0
    for code in codes:
        number = (number * multiplier + code) % buckets
    return (number + len(codes) * (buckets // (longest + 1))) % buckets


def test_an_ngram_row_is_the_hash_of_its_codes_plus_an_offset_per_length() -> None:
    """Multiplier 11, 1000 buckets, n-grams of 1 and 2 (offsets 333 and 666): the unigram 3 is row 3 + 333, the bigram
    (3, 5) is 3 x 11 + 5 + 666; n-grams that include padding (0) do not count, whether the padding comes after or before."""
    layer = _layer(longest=2, buckets=1000, multiplier=11)
    buckets, counts = layer.codes(np.array([[3, 5, 0], [0, 7, 2]]))
    # one more column than timesteps: the tokens are zero-padded by longest - 1 so that every start has its n-grams
    np.testing.assert_array_equal(_numpy(buckets[0]), [[336, 338, 333, 333], [333, 340, 335, 333]])
    np.testing.assert_array_equal(_numpy(counts[0]), [[1, 1, 0, 0], [0, 1, 1, 0]])
    np.testing.assert_array_equal(_numpy(buckets[1]), [[704, 721, 666, 666], [673, 745, 688, 666]])
    np.testing.assert_array_equal(_numpy(counts[1]), [[1, 0, 0, 0], [0, 1, 0, 0]])


def test_the_vector_is_the_sum_of_the_real_ngrams_rows_over_the_root_of_their_number_whatever_the_padding() -> None:
    """The sequence (3, 5) has the n-grams 3, 5 and 35: its vector is the sum of those three rows over sqrt(3), with any padding
    after it or before it; other tokens in the padded places change it (the control)."""
    layer = _layer(longest=2, buckets=1000, dim=3, multiplier=11)
    table = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    layer.table.assign(table)
    expected = table[[336, 338, 704]].sum(axis=0) / np.sqrt(3)
    for tokens in ([[3, 5]], [[3, 5, 0, 0, 0]], [[0, 0, 3, 5]], [[0, 3, 5, 0]]):
        np.testing.assert_allclose(_numpy(layer(np.array(tokens)))[0], expected, rtol=1e-6, err_msg=str(tokens))
    assert not np.allclose(_numpy(layer(np.array([[3, 5, 4]])))[0], expected)
    np.testing.assert_array_equal(_numpy(layer(np.array([[0, 0]]))), 0.0)  # nothing real: a zero vector, not a division by zero


def test_rows_are_exact_in_int32_for_the_largest_codes() -> None:
    """The layer's int32 arithmetic gives the rows that unbounded integers give, for codes up to the table's size and
    4-grams (a step that wrapped around 2**31 would not), at the default table and the largest one."""
    for buckets in (2**17, 4_194_304):
        layer = _layer(longest=4, buckets=buckets)
        tokens = [buckets - 1, 50_000, buckets - 2, 1, buckets - 1, 7]
        rows, _ = layer.codes(np.array([tokens]))
        for n, found in enumerate(rows, 1):
            expected = [_row(tokens[t : t + n], longest=4, buckets=buckets, multiplier=layer.multiplier) for t in range(len(tokens) - n + 1)]
            np.testing.assert_array_equal(_numpy(found)[0, : len(expected)], expected, err_msg=f"{n}-grams, {buckets} buckets")


def test_every_code_of_an_ngram_counts_whatever_the_vocabulary_size() -> None:
    """4-grams that differ only in their first code get different rows, for vocabularies of 63, 127 and 1,023 codes (with
    a base of the vocabulary's size + 1, a power of two, the first code would vanish modulo a power-of-two table)."""
    for num_tokens in (63, 127, 1023):
        layer = _layer(longest=4, buckets=2**17)
        tokens = np.array([[first, 5, 6, 7] for first in range(1, num_tokens + 1)])
        rows, _ = layer.codes(tokens)
        assert len(set(_numpy(rows[3])[:, 0].tolist())) == num_tokens, num_tokens


def test_a_saved_model_with_the_branch_loads_in_safe_mode_and_predicts_the_same(tmp_path: Path) -> None:
    from seqcli.model import load_checkpoint
    from tests.test_model_pieces import model_and_prep, outputs, padded, token_data

    data = token_data()
    model, prep = model_and_prep("ngrams", "post", data)
    x = padded(prep, data.sequences, 12)
    assert (x == 0).any()  # padded
    model.save(tmp_path / "model.keras")
    loaded = load_checkpoint(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(outputs(loaded, x), outputs(model, x), atol=1e-6)
    assert loaded.get_layer("ngrams").get_config() | {"name": "ngrams"} == model.get_layer("ngrams").get_config() | {"name": "ngrams"}


def test_layer_table_shows_the_ngram_branch() -> None:
    """inspect-shapes' row: the n-gram lengths and buckets, the table's weights, one vector per sequence (no mask)."""
    from seqcli.layers import layer_rows
    from seqcli.model import build_model
    from seqcli.spec import PreprocessingSpec, spec_from_dict
    from tests.conftest import fitted
    from tests.test_model_pieces import token_data

    prep = fitted(token_data(), PreprocessingSpec(bucketing=False))
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"ngrams": {"buckets": 100, "dim": 5}, "layers": [{"units": 3}]}})
    rows = {r.name: (r.kind, r.output_shape, r.params, r.mask) for r in layer_rows(build_model(spec, {"main": prep}))}
    assert rows["ngrams"] == ("NgramBag(1- to 4-grams, 100 buckets)", "(batch, features=5)", 100 * 5, False)
    assert rows["concat"][1] == "(batch, units=8)"
