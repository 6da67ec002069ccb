"""Write the Japanese Vowels .ts files as JSON Lines (the same sequences, one record per line).

Each record is ``{"id": "train-0", "sequence": [[12 features], ...], "label": "1"}``: one
list of 12 LPC cepstrum coefficients per frame. The values are copied exactly, so
seqcli reads the same float64 arrays from both formats. Run
``uv run python data/japanese_vowels/to_jsonl.py`` to recreate the two .jsonl files.
"""

import json
from pathlib import Path

from seqcli.data import load
from seqcli.spec import DataFile, spec_from_dict

HERE = Path(__file__).resolve().parent

for split in ("train", "test"):
    source = HERE / f"JapaneseVowels_{split.upper()}.ts"
    data = load(DataFile(path=str(source)), spec_from_dict({"data": {"train": str(source)}}).data)
    lines = [
        json.dumps({"id": f"{split}-{i}", "sequence": seq.tolist(), "label": str(label)}, separators=(",", ":"))
        for i, (seq, label) in enumerate(zip(data.sequences, data.labels, strict=True))
    ]
    (HERE / f"JapaneseVowels_{split.upper()}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
