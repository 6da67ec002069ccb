"""Generate the `stories` data for the text + question example: a short story of facts and a question about it;
the answer is a place.

Each story states where 2 or 3 different objects are ("the ball is in the kitchen. the key is in the garden."), in
random order, with a few filler sentences; the question asks where one of them is ("where is the key?"). The answer
depends on both texts: the question picks the object, the story says where it is. Writes JSON Lines with raw text,
matched by id: `story_{split}.jsonl` (`id`, `text`, `label`: the answer) and `question_{split}.jsonl` (`id`, `text`),
10,000 training and 500 test samples. Deterministic. Run: `python data/stories/generate.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OBJECTS = ("ball", "key", "apple", "book", "cup", "phone", "hat", "box")
PLACES = ("kitchen", "garden", "office", "hallway", "bedroom", "bathroom")
FILLERS = ("it was a quiet day.", "nobody said a word.", "the sun was shining.", "mary went home.", "john sat down.")


def sample(rng: np.random.Generator) -> tuple[str, str, str]:
    """One (story, question, answer)."""
    count = int(rng.integers(2, 4))
    objects = rng.choice(OBJECTS, size=count, replace=False)
    places = rng.choice(PLACES, size=count)
    sentences = [f"the {o} is in the {p}." for o, p in zip(objects, places, strict=True)]
    sentences += list(rng.choice(FILLERS, size=int(rng.integers(0, 3)), replace=False))
    rng.shuffle(sentences)
    asked = int(rng.integers(count))
    return " ".join(sentences), f"where is the {objects[asked]}?", str(places[asked])


def write(folder: Path, split: str, rng: np.random.Generator, count: int) -> None:
    stories, questions = [], []
    for i in range(count):
        story, question, answer = sample(rng)
        stories.append(json.dumps({"id": f"{split}{i:04d}", "text": story, "label": answer}))
        questions.append(json.dumps({"id": f"{split}{i:04d}", "text": question}))
    (folder / f"story_{split}.jsonl").write_text("\n".join(stories) + "\n")
    (folder / f"question_{split}.jsonl").write_text("\n".join(questions) + "\n")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    rng = np.random.default_rng(11)
    write(here, "train", rng, 10000)
    write(here, "test", rng, 500)
