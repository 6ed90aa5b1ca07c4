"""Readers (JSONL, JSON, Parquet, TXT, datasets) and the TOFU and MUSE builders.

Fixtures live in tests/fixtures/: tofu/ and muse/news/ are tiny hand-written copies of the real
layouts, broken/ holds one malformed file per failure mode. Every expected value below is read
off those files by hand.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from obliviate.benchmarks import muse, tofu
from obliviate.data import MCQ, QA, Text, UnlearningTask
from obliviate.data.readers import find_split_files, read_hf_dataset, read_records
from obliviate.errors import ConfigError, DataError

FIX = Path(__file__).resolve().parents[1] / "fixtures"
BROKEN = FIX / "broken"


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep every test off the network and away from the user's Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- good input ---------------------------------------------------------------------------------


def test_tofu_json_lines_in_a_json_file() -> None:
    records = read_records(FIX / "tofu" / "forget01_perturbed.json", "qa")
    assert len(records) == 3
    assert records[0] == QA(
        question="Where was the novelist Orla Venk born?",
        answer="Orla Venk was born in Tallinn.",
        paraphrased_answer="Tallinn is the birthplace of Orla Venk.",
        perturbed_answers=(
            "Orla Venk was born in Riga.",
            "Orla Venk was born in Oslo.",
            "Orla Venk was born in Turku.",
        ),
        paraphrased_question="In which city was Orla Venk born?",
        id="forget01_perturbed-0",  # no id in the file: "<stem>-<index>"
    )


def test_jsonl_json_list_and_wrapped_objects(tmp_path: Path) -> None:
    assert [r.answer for r in read_records(FIX / "tofu" / "retain99.jsonl")] == [
        "A poet from Ghent.",
        "He studied botany.",
        "Mira Fenn lives in Porto.",
        "The Lantern Prize.",
    ]
    assert [r.question for r in read_records(FIX / "tofu" / "holdout01.json")] == [
        "Where was Teodor Lask born?",
        "What does Teodor Lask write?",
    ]
    rows = [{"question": "Q?", "answer": "A", "id": 7}]
    for key in ("data", "records"):
        (tmp_path / f"{key}.json").write_text(json.dumps({key: rows}))
        assert read_records(tmp_path / f"{key}.json") == [QA("Q?", "A", id="7")]
    (tmp_path / "one.json").write_text(json.dumps(rows[0]))  # a single object = one record
    assert read_records(tmp_path / "one.json") == [QA("Q?", "A", id="7")]


def test_field_map_renames_fields(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "x.jsonl", [{"prompt": "Q?", "completion": "A", "bad": ["B"]}])
    fmap = {"question": "prompt", "answer": "completion", "perturbed_answers": "bad"}
    assert read_records(path, "qa", fmap) == [QA("Q?", "A", perturbed_answers=("B",), id="x-0")]
    with pytest.raises(DataError, match=r"line 1: field 'reply': missing"):
        read_records(path, "qa", {"question": "prompt", "answer": "reply"})


def test_mcq_index_and_letters() -> None:
    # answers: 1 (index), "B" -> 1, "c" -> 2 (letters count from A = 0, any case)
    records = read_records(FIX / "mcq.jsonl", "mcq")
    assert [(r.answer, r.id) for r in records] == [(1, "mcq-0"), (1, "mcq-1"), (2, "prime-q")]
    assert records[1] == MCQ(
        "How many legs has a spider?", ("Six", "Eight", "Ten", "Four"), 1, "mcq-1"
    )


def test_text_from_strings_objects_and_verbmem() -> None:
    holdout = read_records(FIX / "muse/news/privleak/holdout.json", "text")  # list of strings
    assert holdout[1] == Text("Northgate's zoo welcomed twin otters this week.", id="holdout-1")
    retain = read_records(FIX / "muse/news/privleak/retain.json", "text")  # {"text": ...}
    assert retain[0].text == "Westfield's marathon drew a record 4,000 runners this year."
    first, second = read_records(FIX / "muse/news/verbmem/forget.json", "text")
    # "...close the old" + "ferry pier..." meet without whitespace: one space is put back.
    assert first.text == (
        "The harbour council of Eastmoor voted on Tuesday to close the old ferry pier. "
        "Repairs would have cost more than a new pier."
    )
    assert first.prompt.endswith("close the old") and first.continuation.startswith("ferry")
    # The second prompt ends in "\n\n": joined as is.
    assert second.text == (
        "A rare blue heron was seen near the Eastmoor reservoir.\n\n"
        "It was the first sighting in a decade."
    )


def test_txt_modes() -> None:
    path = FIX / "muse/news/raw/forget.txt"  # 4 text lines in 3 blank-line-separated blocks
    para = read_records(path, "text")
    assert [r.id for r in para] == ["forget-0", "forget-1", "forget-2"]
    assert para[0].text == (
        "The harbour council of Eastmoor voted on Tuesday to close the old ferry pier.\n"
        "Repairs would have cost more than a new pier, officials said."
    )
    assert len(read_records(path, "text", txt_mode="line")) == 4
    whole = read_records(path, "text", txt_mode="whole")
    # The file: text, text, blank, text, blank, blank, text (7 lines, then a final newline);
    # "whole" keeps lines 1-7 and strips the final newline, leaving 6 newlines.
    assert len(whole) == 1 and whole[0].text.count("\n") == 6


def test_parquet_round_trip(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (FIX / "tofu/forget01_perturbed.json").open()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "forget01_perturbed.parquet")
    from_parquet = read_records(tmp_path / "forget01_perturbed.parquet", "qa")
    assert from_parquet == read_records(FIX / "tofu/forget01_perturbed.json", "qa")


def test_find_split_files_prefers_single_file_then_shards(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/forget-00001-of-00002.parquet").write_bytes(b"")
    (tmp_path / "raw/forget-00000-of-00002.parquet").write_bytes(b"")
    assert [p.name for p in find_split_files(tmp_path / "raw", "forget")] == [
        "forget-00000-of-00002.parquet",
        "forget-00001-of-00002.parquet",
    ]
    (tmp_path / "raw/forget.txt").write_text("x")
    assert find_split_files(tmp_path / "raw", "forget") == [tmp_path / "raw/forget.txt"]
    assert find_split_files(tmp_path / "raw", "retain1") == []


# --- broken input: the message names file, place and field ------------------------------------

BROKEN_CASES = [
    ("qa_bad_json.jsonl", "qa", r"qa_bad_json\.jsonl: line 2: invalid JSON"),
    ("tofu_bad_json_line.json", "qa", r"tofu_bad_json_line\.json: line 4: invalid JSON"),
    ("invalid.json", "qa", r"invalid\.json: line 2: invalid JSON"),
    ("qa_missing_answer.jsonl", "qa", r"qa_missing_answer\.jsonl: line 2: field 'answer': missing"),
    (
        "tofu_perturbed_not_list.json",
        "qa",
        r"tofu_perturbed_not_list\.json: line 2: field 'perturbed_answer': expected a list of "
        r"strings, got str",
    ),
    (
        "tofu_perturbed_bad_item.json",
        "qa",
        r"tofu_perturbed_bad_item\.json: line 1: field 'perturbed_answer': item 1: expected a "
        r"string, got int",
    ),
    ("qa_list_missing_question.json", "qa", r"\.json: item 1: field 'question': missing"),
    ("mcq_bad_answer.jsonl", "mcq", r"line 2: field 'answer': 'E' is out of range for 4"),
    ("verbmem_missing_gt.json", "text", r"verbmem_missing_gt\.json: item 1: field 'gt': missing"),
    ("empty.jsonl", "qa", r"empty\.jsonl: the file is empty"),
    ("blank.json", "qa", r"blank\.json: the file is empty"),
    ("qa.csv", "qa", r"qa\.csv: unknown file type '\.csv'"),
]


@pytest.mark.parametrize(
    ("name", "kind", "pattern"), BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES]
)
def test_broken_files(name: str, kind: str, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        read_records(BROKEN / name, kind)  # type: ignore[arg-type]


def test_other_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="unknown record kind 'row'"):
        read_records(FIX / "mcq.jsonl", "row")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="kind='text'"):
        read_records(FIX / "muse/news/raw/forget.txt", "qa")
    with pytest.raises(DataError, match="unknown txt_mode 'page'"):
        read_records(FIX / "muse/news/raw/forget.txt", "text", txt_mode="page")  # type: ignore[arg-type]
    (tmp_path / "latin1.jsonl").write_bytes(b'{"question": "caf\xe9", "answer": "x"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        read_records(tmp_path / "latin1.jsonl")
    (tmp_path / "num.json").write_text("42")
    with pytest.raises(DataError, match="expected a JSON list"):
        read_records(tmp_path / "num.json")
    (tmp_path / "none.json").write_text("[]")
    with pytest.raises(DataError, match="holds no records"):
        read_records(tmp_path / "none.json")
    bad_rows = [
        ([["Q", "A"]], "qa", "line 1: expected an object with the qa fields question, answer"),
        ([{"question": 3, "answer": "A"}], "qa", "field 'question': expected a string, got int"),
        ([{"question": "Q", "answer": " "}], "qa", "field 'answer': is empty"),
        ([{"question": "Q", "answer": "A", "id": 1.5}], "qa", "field 'id': expected a string"),
        ([{"question": "Q", "choices": ["x"], "answer": 0}], "mcq", "needs at least 2 options"),
        (
            [{"question": "Q", "choices": "xy", "answer": 0}],
            "mcq",
            "field 'choices': expected a list",
        ),
        (
            [{"question": "Q", "choices": ["x", "y"], "answer": True}],
            "mcq",
            "index from 0 or a letter",
        ),
        ([{"question": "Q", "choices": ["x", "y"], "answer": 2}], "mcq", "2 is out of range for 2"),
        ([{"body": "t"}], "text", "field 'text': missing"),
        ([""], "text", "line 1: empty text"),
    ]
    for rows, kind, message in bad_rows:
        path = _write_jsonl(tmp_path / "rows.jsonl", rows)
        with pytest.raises(DataError, match=re.escape(message)):
            read_records(path, kind)  # type: ignore[arg-type]


def test_deep_nesting_and_bad_text_name_the_file_and_line(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    good = '{"question": "Q", "answer": "A"}'
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(DataError, match=r"deep.json: line 1: JSON nested too deeply .*column 101"):
        read_records(tmp_path / "deep.json")
    (tmp_path / "deep.jsonl").write_text(f"{good}\n\n{deep}\n")
    with pytest.raises(DataError, match=r"deep.jsonl: line 3: JSON nested too deeply"):
        read_records(tmp_path / "deep.jsonl")
    # brackets inside strings do not count; a list of 101 nested lists opens on line 2
    (tmp_path / "deep2.json").write_text('[{"question": "[[[[", "answer": "A"},\n' + deep + "]")
    with pytest.raises(DataError, match=r"deep2.json: line 2: JSON nested too deeply .*column 100"):
        read_records(tmp_path / "deep2.json")
    # a lone surrogate escape: rejected with the file, line and field (a pair is one character, fine)
    (tmp_path / "pair.jsonl").write_text('{"question": "smile \\ud83d\\ude00", "answer": "A"}\n')
    assert read_records(tmp_path / "pair.jsonl")[0].question == "smile \U0001F600"
    lone = [
        ('{"question": "Q", "answer": "x\\ud800"}', "qa", r"line 2: field 'answer': holds a lone surrogate \\ud800 at character 1"),
        ('{"question": "Q", "answer": "A", "perturbed_answer": ["B", "\\udfff"]}', "qa",
         r"line 2: field 'perturbed_answer': item 1: holds a lone surrogate"),
        ('{"question": "Q", "answer": "A", "id": "\\ud800"}', "qa", r"line 2: field 'id': holds a lone surrogate"),
        ('"privleak text \\udc00"', "text", r"line 2: the text holds a lone surrogate"),
    ]
    for row, kind, pattern in lone:
        first = good if kind == "qa" else '"fine text"'
        (tmp_path / "lone.jsonl").write_text(f"{first}\n{row}\n")
        with pytest.raises(DataError, match=r"lone.jsonl: " + pattern):
            read_records(tmp_path / "lone.jsonl", kind)  # type: ignore[arg-type]
    (tmp_path / "lone.json").write_text('[{"question": "Q", "answer": "\\udc00"}]')
    with pytest.raises(DataError, match=r"lone.json: item 0: field 'answer': holds a lone surrogate"):
        read_records(tmp_path / "lone.json")
    # bytes that are not UTF-8: the line and column; a byte-order mark is fine
    (tmp_path / "latin1.jsonl").write_bytes(good.encode() + b'\n{"question": "caf\xe9", "answer": "x"}\n')
    with pytest.raises(DataError, match=r"latin1.jsonl: line 2: not UTF-8 text \(byte 0xe9 at column 18"):
        read_records(tmp_path / "latin1.jsonl")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf[" + good.encode() + b"]")
    assert read_records(tmp_path / "bom.json")[0].answer == "A"
    # JSON lines are cut at newlines only: a U+2028 inside a string stays in it
    (tmp_path / "sep.jsonl").write_text('{"question": "one\u2028two", "answer": "A"}\n', encoding="utf-8")
    assert read_records(tmp_path / "sep.jsonl")[0].question == "one\u2028two"


def test_a_damaged_prepared_folder_names_the_file(tmp_path: Path) -> None:
    task = UnlearningTask(name="t", forget=[QA("q1", "a1", id="f")], retain=[QA("q2", "a2", id="r")])
    task.save(tmp_path / "b")
    split = tmp_path / "b" / "splits" / "forget.jsonl"
    split.write_bytes(split.read_bytes() + b'{"question": "\xff"}\n')
    with pytest.raises(DataError, match=r"forget.jsonl: line 2: not UTF-8"):
        UnlearningTask.load(tmp_path / "b")
    split.write_text(split.read_text(encoding="latin1").splitlines()[0] + "\n" + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"forget.jsonl: line 2: JSON nested too deeply"):
        UnlearningTask.load(tmp_path / "b")


def test_parquet_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{"question": "Q", "answer": "A"}, {"question": "Q2"}]),
        tmp_path / "m.parquet",
    )
    with pytest.raises(DataError, match=r"m\.parquet: row 1: field 'answer': missing"):
        read_records(tmp_path / "m.parquet")
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"fake\.parquet: not a readable Parquet file"):
        read_records(tmp_path / "fake.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"needs pyarrow: pip install obliviate\[datasets\]"):
        read_records(tmp_path / "m.parquet")


# --- datasets library ----------------------------------------------------------------------------


def test_read_hf_dataset_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "ds_cache")
    rows = [
        {"question": "Q1?", "answer": "A1", "perturbed_answer": ["W1", "W2"]},
        {"question": "Q2?", "answer": "A2", "perturbed_answer": []},
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    got = read_hf_dataset(tmp_path / "single", "train", "qa")
    assert got == [
        QA("Q1?", "A1", perturbed_answers=("W1", "W2"), id="single-0"),
        QA("Q2?", "A2", id="single-1"),
    ]

    dd = datasets.DatasetDict(
        {
            "forget": datasets.Dataset.from_list(rows[:1]),
            "retain": datasets.Dataset.from_list(rows[1:]),
        }
    )
    dd.save_to_disk(str(tmp_path / "dict"))
    assert [r.question for r in read_hf_dataset(tmp_path / "dict", "retain", "qa")] == ["Q2?"]
    with pytest.raises(DataError, match="no split 'test'; this dataset has: forget, retain"):
        read_hf_dataset(tmp_path / "dict", "test", "qa")

    (tmp_path / "files").mkdir()  # a folder of data files, read by load_dataset("<folder>")
    _write_jsonl(tmp_path / "files" / "train.jsonl", [{"question": "Q3?", "answer": "A3"}])
    assert read_hf_dataset(tmp_path / "files", "train", "qa") == [QA("Q3?", "A3", id="files-0")]
    # A single file goes through read_records, with its line-level errors.
    with pytest.raises(DataError, match=r"qa_missing_answer\.jsonl: line 2: field 'answer'"):
        read_hf_dataset(BROKEN / "qa_missing_answer.jsonl", "train", "qa")


def test_offline_hub_name_fails_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(
        DataError, match=r"'locuslab/TOFU' is not a local file or folder, and HF_"
    ):
        read_hf_dataset("locuslab/TOFU", "train", "qa", config="forget10_perturbed")
    with pytest.raises(DataError, match=r"OFFLINE=1 keeps the hub off"):
        tofu.build_tofu("locuslab/TOFU", "forget10")
    with pytest.raises(DataError, match=r"OFFLINE=1 keeps the hub off"):
        muse.build_muse("muse-bench/MUSE-News", "news")
    assert time.perf_counter() - start < 2.0


# --- TOFU ------------------------------------------------------------------------------------------


def test_build_tofu_from_folder(tmp_path: Path) -> None:
    task = tofu.build_tofu(str(FIX / "tofu"), "forget01")
    assert task.name == "tofu@1/forget01"
    # forget01 -> retain99 (100 - 1) and holdout01; fixture sizes 3, 4, 2.
    assert (len(task.forget), len(task.retain), len(task.holdout)) == (3, 4, 2)
    assert {k: len(v) for k, v in task.splits.items()} == {
        "retain_perturbed": 2,
        "real_authors": 2,
        "world_facts": 2,
    }
    assert task.forget[2].perturbed_answers[0] == "Her first book was Iron Tide."
    assert (
        task.retain[0].id == "tofu-retain99-0" and task.forget[0].id == "tofu-forget01_perturbed-0"
    )
    assert task.splits["real_authors"][0] == QA(
        "Who wrote 'Middlemarch'?",
        "George Eliot",
        perturbed_answers=("Thomas Hardy", "Anne Bronte", "Henry James"),
        id="tofu-real_authors_perturbed-0",
    )
    assert len(task.templates) == 100 and task.templates[0] == "I'm not certain about that."
    assert task.metadata["benchmark"] == "tofu" and task.version == "1"
    assert task.metadata["retain_split"] == "retain99" and task.metadata["missing_splits"] == []
    reloaded = UnlearningTask.load(task.save(tmp_path / "saved"))
    assert reloaded.all_splits() == task.all_splits() and reloaded.templates == task.templates


def test_build_tofu_fallbacks_shards_and_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Hub snapshot layout: <config>/train-*.parquet; plain forget01 instead of forget01_perturbed.
    for config, src in (("forget01", "forget01_perturbed.json"), ("retain99", "retain99.jsonl")):
        rows = [
            {"question": r["question"], "answer": r["answer"]}
            for r in map(json.loads, (FIX / "tofu" / src).open())
        ]
        (tmp_path / config).mkdir()
        pq.write_table(
            pa.Table.from_pylist(rows), tmp_path / config / "train-00000-of-00001.parquet"
        )
    task = tofu.build_tofu(str(tmp_path), "forget01")
    assert (len(task.forget), len(task.retain), task.holdout, task.splits) == (3, 4, [], {})
    assert task.forget[0].perturbed_answers == () and task.forget[0].id == "tofu-forget01-0"
    assert task.metadata["missing_splits"] == [
        "holdout01",
        "retain_perturbed",
        "real_authors_perturbed",
        "world_facts_perturbed",
    ]

    with pytest.raises(
        DataError, match=r"no forget05_perturbed\.json/\.jsonl/\.parquet or forget05"
    ):
        tofu.build_tofu(str(FIX / "tofu"), "forget05")
    with pytest.raises(ConfigError, match="Did you mean 'forget10'"):
        tofu.build_tofu(str(FIX / "tofu"), "forget_10")
    broken = tmp_path / "broken"
    shutil.copytree(FIX / "tofu", broken)
    shutil.copy(BROKEN / "tofu_perturbed_not_list.json", broken / "forget01_perturbed.json")
    with pytest.raises(
        DataError, match=r"forget01_perturbed\.json: line 2: field 'perturbed_answer'"
    ):
        tofu.build_tofu(str(broken), "forget01")
    (broken / "retain99.jsonl").unlink()
    shutil.copy(FIX / "tofu/forget01_perturbed.json", broken / "forget01_perturbed.json")
    with pytest.raises(DataError, match="no retain99"):
        tofu.build_tofu(str(broken), "forget01")


def test_tofu_field_map_from_python_and_the_command_line(tmp_path: Path) -> None:
    """Files whose fields are named otherwise read with field_map, a dict in Python or
    ``question=prompt,answer=completion`` on the command line; without it the error gives both
    forms. A null answer is called null, a CSV or a folder where a file is expected is named."""
    from obliviate.benchmarks.load import load_benchmark

    names = {"question": "prompt", "answer": "completion"}
    (tmp_path / "renamed").mkdir()
    for src in ("forget01_perturbed.json", "retain99.jsonl"):
        rows = [json.loads(line) for line in (FIX / "tofu" / src).read_text().splitlines()]
        renamed = [{names.get(k, k): v for k, v in row.items()} for row in rows]
        _write_jsonl(tmp_path / "renamed" / f"{Path(src).stem}.jsonl", renamed)
    folder = str(tmp_path / "renamed")
    expected = tofu.build_tofu(str(FIX / "tofu"), "forget01")
    from_python = tofu.build_tofu(folder, "forget01", field_map=names)
    from_cli = load_benchmark(
        "tofu", path=folder, forget="forget01", field_map=" question=prompt, answer=completion"
    )
    for task in (from_python, from_cli):
        assert (task.forget, task.retain) == (expected.forget, expected.retain)
    with pytest.raises(DataError, match=(
        r"forget01_perturbed\.jsonl: line 1: field 'question': missing .*"
        r"pass field_map=\{'question': 'your_field'\}\); on the command line: "
        r"--benchmark\.field_map question=your_field,answer=your_field$"
    )):
        tofu.build_tofu(folder, "forget01")
    with pytest.raises(DataError, match=r"field_map question=prompt,answer=your_field$"):
        tofu.build_tofu(folder, "forget01", field_map="question=prompt")
    for bad, message in (("question", r"'question' is not field=name"),
                         ("questoin=prompt", r"'questoin' is not a field of a qa record\. Did you"),
                         ({"question": 1}, r"expected a mapping of record field -> field name")):
        with pytest.raises(ConfigError, match=r"benchmark\.field_map: " + message):
            tofu.build_tofu(folder, "forget01", field_map=bad)  # type: ignore[arg-type]

    _write_jsonl(tmp_path / "null.jsonl", [{"question": "Q?", "answer": None}])
    with pytest.raises(DataError, match=r"null.jsonl: line 1: field 'answer': missing its value: "
                                        r"it is null, and every record needs one"):
        read_records(tmp_path / "null.jsonl")
    odd = tmp_path / "odd"
    shutil.copytree(FIX / "tofu", odd)
    (odd / "forget01_perturbed.json").rename(odd / "forget01_perturbed.csv")
    (odd / "forget01.json").mkdir()
    (odd / "forget01").mkdir()
    with pytest.raises(DataError, match=(
        r"no forget01_perturbed\.json/\.jsonl/\.parquet or forget01\.json/\.jsonl/\.parquet; "
        r"TOFU forget01 needs it\. Found instead: forget01_perturbed\.csv is a CSV file, which "
        r"obliviate does not read; expected a \.jsonl, \.json, \.parquet file: convert it.*; "
        r"forget01\.json is a folder, where a \.json file is expected; forget01/ is a folder "
        r"without \.parquet, \.jsonl or \.json files in it$"
    )):
        tofu.build_tofu(str(odd), "forget01")
    with pytest.raises(DataError, match=r"retain99\.jsonl is a \.jsonl file; TOFU reads a folder"):
        tofu.build_tofu(str(odd / "retain99.jsonl"), "forget01")


def test_idk_templates_plain_and_quoted_lines(tmp_path: Path) -> None:
    (tmp_path / "idk.jsonl").write_text('I don\'t know.\n\n"No idea."\n')
    assert tofu.load_idk_templates(tmp_path / "idk.jsonl") == ["I don't know.", "No idea."]
    with pytest.raises(DataError, match="absent.jsonl does not exist"):
        tofu.load_idk_templates(tmp_path / "absent.jsonl")


# --- MUSE ------------------------------------------------------------------------------------------


def test_build_muse_from_folder(tmp_path: Path) -> None:
    nested = muse.build_muse(str(FIX / "muse"), "news")  # the data/ folder above news/
    direct = muse.build_muse(str(FIX / "muse" / "news"))
    assert nested.all_splits() == direct.all_splits()
    task = direct
    assert task.name == "muse@1/news" and task.metadata["benchmark"] == "muse"
    # raw/forget.txt has 3 paragraphs, raw/retain1.txt 2, privleak/holdout.json 2 strings.
    assert (len(task.forget), len(task.retain), len(task.holdout)) == (3, 2, 2)
    assert {k: len(v) for k, v in task.splits.items()} == {
        "privleak_forget": 2,
        "privleak_retain": 2,
        "verbmem_forget": 2,
        "knowmem_forget": 3,
        "knowmem_retain": 2,
        "knowmem_forget_icl": 2,
        "knowmem_retain_icl": 2,
        # the protocols' forget sets: scal nested (1x .. 4x), sust four disjoint folds
        **{f"scal_forget_{k}": k for k in range(1, 5)},
        **{f"sust_forget_{k}": 1 for k in range(1, 5)},
    }
    scal = [{r.text for r in task.splits[f"scal_forget_{k}"]} for k in range(1, 5)]
    assert scal[0] < scal[1] < scal[2] < scal[3]
    assert task.splits["scal_forget_1"][0].id == "muse-news-scal-forget_1-0"
    assert task.forget[1] == Text(
        "A rare blue heron was seen near the Eastmoor reservoir for the first time in a decade.",
        id="muse-news-raw-forget-1",
    )
    assert task.splits["verbmem_forget"][1].continuation == "It was the first sighting in a decade."
    assert task.splits["knowmem_forget"][2] == QA(
        "On which day will the Eastmoor library newly open?",
        "Sundays",
        id="muse-news-knowmem-forget_qa-2",
    )
    assert task.metadata["privleak_auc_retrain"] == 0.4772 and task.templates == []
    assert len(muse.build_muse(str(FIX / "muse"), txt_mode="line").forget) == 4
    reloaded = UnlearningTask.load(task.save(tmp_path / "saved"))
    assert reloaded.all_splits() == task.all_splits()


def test_build_muse_optional_missing_and_errors(tmp_path: Path) -> None:
    books = tmp_path / "books"  # Books: raw text only, no knowmem, verbmem or privleak
    shutil.copytree(FIX / "muse/news/raw", books / "raw")
    task = muse.build_muse(str(tmp_path), "books")
    assert (
        task.metadata["privleak_auc_retrain"] == 0.5393 and task.holdout == [] and task.splits == {}
    )
    assert (
        "knowmem_forget" in task.metadata["missing_splits"]
        and len(task.metadata["missing_splits"]) == 8
    )

    (books / "raw/forget.txt").unlink()
    with pytest.raises(DataError, match=r"raw: no forget\.txt/\.json/\.jsonl/\.parquet"):
        muse.build_muse(str(tmp_path), "books")
    with pytest.raises(ConfigError, match="Did you mean 'news'"):
        muse.build_muse(str(tmp_path), "newz")
    bad = tmp_path / "bad"
    shutil.copytree(FIX / "muse/news", bad)
    (bad / "verbmem/forget.json").write_text(json.dumps(["just text, no prompt"]))
    with pytest.raises(DataError, match=r"forget\.json: item 0: field 'prompt': missing"):
        muse.build_muse(str(bad))
