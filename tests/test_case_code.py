import uuid

from models.children import CASE_CODE_ALPHABET, case_code_for, normalise_case_code


def test_case_code_is_short_readable_and_derived_from_the_id():
    child_id = uuid.UUID("6f1c2b9e-0d4a-4c55-9a57-1f2e3d4c5b6a")
    code = case_code_for(child_id)
    assert code == case_code_for(child_id)
    assert len(code) == 9 and code[4] == "-"
    assert all(ch in CASE_CODE_ALPHABET for ch in code.replace("-", ""))
    assert not set("01ILOUV") & set(code)


def test_case_codes_differ_across_ids():
    codes = {case_code_for(uuid.uuid4()) for _ in range(5000)}
    assert len(codes) == 5000


def test_typed_codes_are_normalised():
    assert normalise_case_code("abcd efgh") == "ABCD-EFGH"
    assert normalise_case_code(" abcd-efgh ") == "ABCD-EFGH"
