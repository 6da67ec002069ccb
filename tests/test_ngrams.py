"""The n-gram bag branch (``model.ngrams``, :mod:`seqcli.ngrams`): the n-gram codes and the vector computed by hand,
padding on either side, the int32 bound, saving, and what ``inspect-shapes`` says. Padding invariance inside a whole
model is tested with the other pieces (tests/test_model_pieces.py), the spec's rules with the others (tests/test_spec.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqcli import ngrams
from seqcli.backend import import_keras


def _layer(num_tokens: int, longest: int, buckets: int, dim: int = 2) -> object:
    layer = ngrams.layer_class()(num_tokens, longest, buckets, dim)
    layer.build((None, None))
    return layer


def _numpy(value: object) -> np.ndarray:
    return np.asarray(import_keras().ops.convert_to_numpy(value))


def test_an_ngram_is_its_codes_in_base_radix_after_its_length() -> None:
    """Codes 1..9 (radix 10), 1000 buckets, n-grams of 1 and 2: the unigram 3 is bucket 3 + 333, the bigram (3, 5) is
    35 + 666; n-grams that include padding (0) do not count, whether the padding comes after or before."""
    layer = _layer(num_tokens=9, longest=2, buckets=1000)
    buckets, counts = layer.codes(np.array([[3, 5, 0], [0, 7, 2]]))
    # one more column than timesteps: the tokens are zero-padded by longest - 1 so that every start has its n-grams
    np.testing.assert_array_equal(_numpy(buckets[0]), [[336, 338, 333, 333], [333, 340, 335, 333]])
    np.testing.assert_array_equal(_numpy(counts[0]), [[1, 1, 0, 0], [0, 1, 1, 0]])
    np.testing.assert_array_equal(_numpy(buckets[1]), [[701, 716, 666, 666], [673, 738, 686, 666]])
    np.testing.assert_array_equal(_numpy(counts[1]), [[1, 0, 0, 0], [0, 1, 0, 0]])


def test_the_vector_is_the_sum_of_the_real_ngrams_rows_over_the_root_of_their_number_whatever_the_padding() -> None:
    """The sequence (3, 5) has the n-grams 3, 5 and 35: its vector is the sum of those three rows over sqrt(3), with any padding
    after it or before it; other tokens in the padded places change it (the control)."""
    layer = _layer(num_tokens=9, longest=2, buckets=1000, dim=3)
    table = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    layer.table.assign(table)
    expected = table[[336, 338, 701]].sum(axis=0) / np.sqrt(3)
    for tokens in ([[3, 5]], [[3, 5, 0, 0, 0]], [[0, 0, 3, 5]], [[0, 3, 5, 0]]):
        np.testing.assert_allclose(_numpy(layer(np.array(tokens)))[0], expected, rtol=1e-6, err_msg=str(tokens))
    assert not np.allclose(_numpy(layer(np.array([[3, 5, 4]])))[0], expected)
    np.testing.assert_array_equal(_numpy(layer(np.array([[0, 0]]))), 0.0)  # nothing real: a zero vector, not a division by zero


def test_codes_stay_within_int32_for_a_large_vocabulary() -> None:
    """50,000 words and 2**17 buckets would overflow int32 in base 50,001: the radix is lowered so that every step fits,
    and the buckets stay in range (no negative wrap-around) for the largest codes."""
    assert ngrams.radix(50_000, 2**17) * 2**17 + 2**17 < 2**31
    layer = _layer(num_tokens=50_000, longest=4, buckets=2**17)
    tokens = np.array([[50_000, 49_999, 50_000, 1, 2]])
    buckets, _ = layer.codes(tokens)
    values = np.concatenate([_numpy(b).ravel() for b in buckets])
    assert values.min() >= 0 and values.max() < 2**17
    assert len({int(b[0, 0]) for b in map(_numpy, buckets)}) == 4  # the first position's 1- to 4-grams: four different rows


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


def test_real_values_get_no_ngram_branch_and_a_note() -> None:
    """`input: auto` reads real-valued data as floats: the model is built without the branch, and says so."""
    from seqcli import shapes
    from seqcli.spec import spec_from_dict
    from tests.test_model_pieces import float_data

    spec = spec_from_dict({"data": {"train": "x.npy"}, "preprocessing": {"bucketing": False}, "model": {"ngrams": {}, "layers": [{"units": 3}]}})
    result = shapes.trace(spec, train=float_data())
    assert "`model.ngrams` is left out: the data was read as real values, which have no n-grams." in " ".join(result.notes)
    assert "ngrams" not in [row.name for row in result.layers]
