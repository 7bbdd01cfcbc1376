"""DoNotCall (calls/models/records.py): numbers imported from a CSV, with or without a header."""

import io

import pytest

from calls.models import DoNotCall


@pytest.mark.parametrize(
    ("content", "listed", "added", "skipped"),
    [
        pytest.param(
            b"number,reason\n+91 88671 35123,Asked on the phone\n918867135124,\n"
            b"not a number,x\n918867135123,Again\n",
            {"918867135123": "Asked on the phone", "918867135124": ""},
            2,
            2,
            id="with a header",
        ),
        pytest.param(
            b"+91 88671 35123,Asked\n918867135124\n12345,bad\n\n0091 8867135123,dup\n",
            {"918867135123": "Asked", "918867135124": ""},
            2,
            2,
            id="without a header",
        ),
        pytest.param(
            b"\xef\xbb\xbfReason,Number\nAsked,+91 88671 35123\n",
            {"918867135123": "Asked"},
            1,
            0,
            id="BOM and columns in another order",
        ),
    ],
)
def test_do_not_call_numbers_import_from_a_csv(supervisor, content, listed, added, skipped):
    report = DoNotCall.import_csv(io.BytesIO(content), supervisor)

    assert (report.added, len(report.skipped)) == (added, skipped)

    assert dict(DoNotCall.objects.values_list("number", "reason")) == listed
    assert set(DoNotCall.objects.values_list("added_by", flat=True)) == {supervisor.pk}


def test_a_number_already_listed_keeps_its_reason_and_counts_as_skipped(db):
    DoNotCall.objects.create(number="918867135123", reason="first")

    report = DoNotCall.import_csv(io.BytesIO(b"918867135123,second\n918867135124,new\n"))

    assert (report.added, report.skipped) == (1, [(1, "+91 88671 35123 is already on the list")])
    assert DoNotCall.objects.get(number="918867135123").reason == "first"


def test_the_import_says_which_rows_it_skipped_and_why_naming_the_first_few(db):
    bad = "".join(f"{n}\n" for n in range(12340, 12347))  # seven numbers too short to be one
    content = f"number\n+91 88671 35123\n918867135123\n\n{bad}".encode()

    report = DoNotCall.import_csv(io.BytesIO(content))

    assert report.added == 1
    assert report.skipped[0] == (3, "+91 88671 35123 is repeated in the file")
    assert report.skipped[1] == (
        5,
        "12340 is not a valid phone number with country code (for example +91 88671 35123).",
    )
    summary = report.summary()
    assert summary.startswith(
        "1 number added, 8 rows skipped (line 3: +91 88671 35123 is repeated in the file; line 5: "
    )
    assert "line 8: 12343" in summary and "line 9" not in summary
    assert summary.endswith("; and 3 more).")
