from hypothesis import given
from hypothesis import strategies as st

from exchange.accounts.rules import USCC_ALPHABET, uscc_check_char, uscc_problem


def test_published_worked_example_has_check_character_3():
    # GB 32100 worked example: 91350100M000100Y4 → weighted sum 1640 → check '3'.
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert uscc_problem("91350100M000100Y43") is None


def test_wrong_check_digit_is_reported():
    assert uscc_problem("91350100M000100Y44") == "check_digit"


def test_lower_case_and_spaces_are_normalised():
    assert uscc_problem(" 91350100m000100y43 ") is None


def test_wrong_length_is_reported():
    assert uscc_problem("91350100M000100Y4") == "length"


def test_letters_i_o_s_v_z_are_refused():
    for letter in "IOSVZ":
        assert uscc_problem("91350100M000100Y" + letter + "3") == "characters"


@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_the_computed_check_character_always_validates(first17):
    assert uscc_problem(first17 + uscc_check_char(first17)) is None


@given(
    st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17),
    st.integers(min_value=0, max_value=16),
    st.sampled_from(USCC_ALPHABET),
)
def test_any_single_character_change_is_caught(first17, position, replacement):
    code = first17 + uscc_check_char(first17)
    changed = code[:position] + replacement + code[position + 1 :]
    if changed != code:
        # Weights 3^i mod 31 are all non-zero mod the prime 31, so one substitution always shows.
        assert uscc_problem(changed) == "check_digit"
