"""Model cards: what a scored model is, beyond its name and checkpoint hash.

A card is a small JSON object kept in the run record (``card``), in the spirit of RobustBench's one card per
model: who taught it and how, on what data, with which preprocessing, under which licence, and where to read
more. Every field is optional; the leaderboard shows the card on the model's page and in ``model-cards.csv``.

``score --card CARD.json`` reads one, ``--card-field KEY=VALUE`` sets or overrides single fields, and a zoo
model without a card gets the one its zoo entry carries (libkd_bench.models.zoo_cards). A card is validated once,
here: an unknown field, a value of the wrong type, or a link that is not http(s) is one BenchError line naming
the field and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.core.locations import ZOO_PREFIX

LINK_SCHEMES = ("https://", "http://")
MAX_TEXT = 2000  # characters of one text field: a card describes a model, it does not hold a paper


@dataclass(frozen=True)
class ModelCard:
    """The card's fields, each None when not known.

    Attributes:
        teacher: the teacher(s) the model was distilled from (name, zoo name or link); None for no teacher.
        method: the training or distillation method, e.g. ``Hinton KD (T=4, alpha=0.9)`` or ``none (labels only)``.
        seed: the training seed, a whole number >= 0.
        training_data: what it was trained on, e.g. ``CIFAR-10 train split (50,000 images)``.
        preprocessing: input size and normalisation the model expects.
        licence: the licence of the weights.
        link: where the weights or their code live (an http or https address).
        citation: how to cite the model or its method.
        authors: who trained it.
        notes: anything else a reader should know.
    """

    teacher: str | None = None
    method: str | None = None
    seed: int | None = None
    training_data: str | None = None
    preprocessing: str | None = None
    licence: str | None = None
    link: str | None = None
    citation: str | None = None
    authors: str | None = None
    notes: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields that are set, in declaration order (an empty card is ``{}``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def merged(self, override: ModelCard) -> ModelCard:
        """This card with every field ``override`` sets replaced by its value."""
        return ModelCard(**{**self.to_json(), **override.to_json()})

    def __bool__(self) -> bool:
        return bool(self.to_json())


CARD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ModelCard))
WHOLE_NUMBER_FIELDS = ("seed",)
FIELD_LABELS = {
    "teacher": "Teacher",
    "method": "Method",
    "seed": "Seed",
    "training_data": "Training data",
    "preprocessing": "Preprocessing",
    "licence": "Licence",
    "link": "Link",
    "citation": "Citation",
    "authors": "Trained by",
    "notes": "Notes",
}


def card_from_json(data: object, what: str = "card") -> ModelCard:
    """A validated card from parsed JSON.

    Args:
        data: the parsed object.
        what: how messages name the card (``card cards/vit.json``).

    Raises:
        BenchError: not an object, an unknown field, a value of the wrong type or out of range.
    """
    if not isinstance(data, Mapping):
        raise BenchError(f'{what} is a JSON {_json_type(data)}, not an object; write it as {{"method": "...", ...}}')
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in CARD_FIELDS:
            raise BenchError(f"{what}: {unknown_name_message('field', str(key), CARD_FIELDS)}")
        if value is not None:
            values[key] = _checked(key, value, what)
    return ModelCard(**values)


def _checked(key: str, value: object, what: str) -> object:
    if key in WHOLE_NUMBER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BenchError(
                f"{what}: field {key!r} must be a whole number >= 0, not the {_json_type(value)} {value!r}; "
                "fix the card"
            )
        return value
    if not isinstance(value, str):
        raise BenchError(f"{what}: field {key!r} must be text, not the {_json_type(value)} {value!r}; fix the card")
    text = value.strip()
    if not text:
        raise BenchError(f"{what}: field {key!r} is empty; leave it out or fill it in")
    if len(text) > MAX_TEXT:
        raise BenchError(f"{what}: field {key!r} has {len(text)} characters, more than {MAX_TEXT}; shorten it")
    if key == "link" and not text.lower().startswith(LINK_SCHEMES):
        raise BenchError(f"{what}: field 'link' {text!r} is not an http(s) address; give https://...")
    return text


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


def read_card(path: Path) -> ModelCard:
    """The card in a JSON file; a missing, unreadable or invalid file is a one-line BenchError."""
    path = Path(path)
    what = f"card {path}"
    if not path.is_file():
        raise BenchError(f"{what} does not exist; give the path of a JSON model card")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{what} cannot be read ({exc}); give a UTF-8 JSON file") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"{what} is not valid JSON ({exc}); fix the file") from None
    return card_from_json(data, what)


def card_from_assignments(assignments: list[str]) -> ModelCard:
    """A card from ``KEY=VALUE`` strings (``--card-field seed=3``); ``seed`` is read as a whole number.

    Raises:
        BenchError: an assignment without ``=``, an unknown key, or a value that fails validation.
    """
    values: dict[str, object] = {}
    for item in assignments:
        key, separator, value = item.partition("=")
        key = key.strip()
        what = f"--card-field {item!r}"
        if not separator:
            raise BenchError(f"{what} is not KEY=VALUE; e.g. --card-field seed=3")
        if key in WHOLE_NUMBER_FIELDS:
            try:
                values[key] = int(value.strip())
            except ValueError:
                raise BenchError(f"{what}: {key} must be a whole number >= 0; e.g. --card-field {key}=3") from None
        else:
            values[key] = value
    return card_from_json(values, "--card-field")


def record_card(data: Mapping[str, Any] | None) -> ModelCard:
    """The card stored in a run record; a record written by hand with a broken card shows no card rather than
    failing the whole leaderboard."""
    try:
        return card_from_json(dict(data or {}))
    except BenchError:
        return ModelCard()


def scored_card(checkpoints: list[str], given: ModelCard) -> ModelCard:
    """The card a new run record gets: the zoo entry's card for one ``zoo:NAME`` checkpoint (none for a file or an
    ensemble), with every field of ``given`` (``--card`` and ``--card-field``) over it."""
    from libkd_bench.models.zoo_cards import zoo_card

    base = ModelCard()
    if len(checkpoints) == 1 and checkpoints[0].startswith(ZOO_PREFIX):
        base = card_from_json(zoo_card(checkpoints[0][len(ZOO_PREFIX) :]), checkpoints[0])
    return base.merged(given)


def given_card(card_path: Path | None, assignments: list[str]) -> ModelCard:
    """``--card`` with ``--card-field`` over it, validated (an empty card when neither is given)."""
    base = read_card(card_path) if card_path is not None else ModelCard()
    return base.merged(card_from_assignments(assignments))


def card_of(card: Mapping[str, Any] | None, checkpoint: Mapping[str, Any]) -> tuple[ModelCard, str]:
    """The card a report shows for a run record, and where it comes from: the record's own card (``record``), or
    for a record written before cards that was scored from the zoo, its zoo entry's (``zoo entry NAME``); an
    empty card and "" otherwise."""
    from libkd_bench.models.zoo_cards import zoo_card

    own = record_card(card)
    if own:
        return own, "record"
    zoo = checkpoint.get("zoo")
    if isinstance(zoo, str) and zoo:
        try:
            return card_from_json(zoo_card(zoo)), f"zoo entry {zoo}"
        except BenchError:
            return ModelCard(), ""
    return ModelCard(), ""
