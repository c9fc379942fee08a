"""Model cards: validation known answers, every zoo entry's card, the score flags, and the record round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_cli
from leaderboard_records import SOURCE_A, teacher

from libkd_bench.core.errors import BenchError
from libkd_bench.models.zoo import ZOO
from libkd_bench.models.zoo_cards import zoo_card
from libkd_bench.records.model_card import (
    ModelCard,
    card_from_assignments,
    card_from_json,
    card_of,
    given_card,
    read_card,
    scored_card,
)
from libkd_bench.records.run_record import RunRecord, read_record, write_record

GOOD = {
    "teacher": "resnet56",
    "method": "Hinton KD (T=4)",
    "seed": 3,
    "training_data": "CIFAR-10 train",
    "preprocessing": "32x32, CIFAR-10 mean/std",
    "licence": "MIT",
    "link": "https://example.org/weights",
    "citation": "Someone 2024",
}


def test_a_valid_card_keeps_its_fields_in_order() -> None:
    card = card_from_json({**GOOD, "notes": "  trimmed  "})
    assert card.seed == 3
    assert card.notes == "trimmed"
    assert list(card.to_json()) == [*GOOD, "notes"]
    assert card_from_json({}) == ModelCard()
    assert not ModelCard()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"seed": "3"}, "field 'seed' must be a whole number >= 0, not the text '3'"),
        ({"seed": 1.5}, "field 'seed' must be a whole number"),
        ({"seed": True}, "not the boolean True"),
        ({"seed": -1}, "field 'seed' must be a whole number >= 0"),
        ({"method": 4}, "field 'method' must be text, not the number 4"),
        ({"teacher": ["a", "b"]}, "field 'teacher' must be text, not the array"),
        ({"licence": "  "}, "field 'licence' is empty"),
        ({"link": "javascript:alert(1)"}, "is not an http(s) address"),
        ({"methd": "kd"}, "unknown field 'methd'; did you mean method?"),
        (["method", "kd"], "is a JSON array, not an object"),
    ],
)
def test_a_bad_card_is_one_line_naming_the_field(data: object, fragment: str) -> None:
    with pytest.raises(BenchError) as caught:
        card_from_json(data, "card c.json")
    message = str(caught.value)
    assert fragment in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_entry_carries_a_valid_card(name: str) -> None:
    card = card_from_json(zoo_card(name), name)
    assert all((card.method, card.training_data, card.preprocessing, card.licence, card.authors))
    if ZOO[name].teacher:  # a distilled model names its teacher and whom to cite for its method
        assert card.teacher
        assert card.citation


def test_card_files_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(json.dumps(GOOD), encoding="utf-8")
    assert read_card(path).teacher == "resnet56"
    given = given_card(path, ["seed=7", "notes=a=b"])
    assert (given.seed, given.notes, given.method) == (7, "a=b", "Hinton KD (T=4)")
    for bad, fragment in ((["seed=x"], "seed must be a whole number"), (["seed"], "is not KEY=VALUE")):
        with pytest.raises(BenchError, match=fragment):
            card_from_assignments(bad)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(BenchError, match="is not valid JSON"):
        read_card(path)
    with pytest.raises(BenchError, match="does not exist"):
        read_card(tmp_path / "missing.json")


def test_a_zoo_model_gets_its_card_and_flags_override_it() -> None:
    card = scored_card(["zoo:ref-resnet20-kd"], ModelCard(seed=5))
    assert card.teacher == "akamaster-resnet56"
    assert card.seed == 5
    assert scored_card(["model.pt"], ModelCard()) == ModelCard()
    assert scored_card(["zoo:ref-rednet", "zoo:akamaster-resnet56"], ModelCard()) == ModelCard()  # an ensemble


@pytest.mark.parametrize(
    ("card", "fragment"),
    [('{"seed": "3"}', "field 'seed' must be a whole number"), ('{"link": 7}', "field 'link' must be text")],
)
def test_score_refuses_a_bad_card_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], card: str, fragment: str
) -> None:
    path = tmp_path / "card.json"
    path.write_text(card, encoding="utf-8")
    code, _, err = run_cli(["score", str(tmp_path / "missing.pt"), "--card", str(path)], capsys)
    assert_one_line_error(code, err, f"card {path}", fragment)


def test_score_refuses_a_bad_card_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["score", str(tmp_path / "missing.pt"), "--card-field", "colour=red"], capsys)
    assert_one_line_error(code, err, "unknown field 'colour'")


def test_the_card_round_trips_through_the_record(tmp_path: Path) -> None:
    record = dataclasses.replace(teacher(), card=card_from_json(GOOD).to_json())
    path = write_record(tmp_path, record)
    again = read_record(path)
    assert again.card == GOOD
    assert card_of(again.card, again.checkpoint) == (card_from_json(GOOD), "record")
    old = RunRecord.from_json({key: value for key, value in record.to_json().items() if key != "card"})
    assert old.card == {}
    assert card_of({}, {"zoo": "ref-vit-kd"})[1] == "zoo entry ref-vit-kd"
    assert card_of({}, {"path": "x.pt"}) == (ModelCard(), "")
    assert SOURCE_A["id"] in again.run_id
