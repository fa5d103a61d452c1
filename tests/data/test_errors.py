from personalign.data.errors import DatasetError


def test_message_names_file_line_and_record() -> None:
    err = DatasetError("field 'persona' is empty", path="a/b.jsonl", line=7, record_id="p-1")
    assert str(err) == "a/b.jsonl, line 7 (record p-1): field 'persona' is empty"
    assert (err.path, err.line, err.record_id) == ("a/b.jsonl", 7, "p-1")
    assert err.exit_code == 2


def test_unknown_parts_are_left_out() -> None:
    assert str(DatasetError("no such dataset")) == "no such dataset"
    assert str(DatasetError("bad", path="x.csv")) == "x.csv: bad"
    assert str(DatasetError("bad", record_id="9")) == "record 9: bad"


def test_to_dict_is_the_skipped_entry_shape() -> None:
    err = DatasetError("bad row", path="P.csv", line=5, record_id="4")
    assert err.to_dict() == {"file": "P.csv", "line": 5, "record_id": "4", "reason": "bad row"}
