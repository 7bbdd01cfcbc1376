"""The catalogue (calls/models/catalogue.py): a flow's variables and their masking, an audio's
one source, a bridge's number."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from calls.models import MASK, AudioAsset, Bridge, IvrFlow


@pytest.mark.parametrize(
    ("template", "variables"),
    [
        ("Hello {Name}, your otp for login is {otp}", ["Name", "otp"]),
        ("{Name}, {Name} again: {otp}", ["Name", "otp"]),
        ("{first}{last}", ["first", "last"]),
        ("No variables at all.", []),
        ("", []),
        ("Literal {{braces}} and { spaced } and {} stay text, {real} does not", ["real"]),
        ("Nested {{{x}}} is literal", []),
    ],
)
def test_it_lists_template_variables_in_order_without_duplicates(template, variables):
    assert IvrFlow(template=template).variables == variables


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("otp", True),
        ("OTP_code", True),
        ("login_pin", True),
        ("password", True),
        ("Name", False),
        ("order_id", False),
        ("account", True),
    ],
)
def test_it_marks_otp_like_variables_sensitive(name, sensitive):
    flow = IvrFlow(template="", sensitive_variables="account")
    assert flow.is_sensitive(name) is sensitive


def test_it_renders_the_sentence_with_sensitive_values_masked():
    flow = IvrFlow(template="Hello {Name}, your otp for login is {otp}")
    assert (
        flow.render({"Name": "Asha", "otp": "482913"})
        == f"Hello Asha, your otp for login is {MASK}"
    )
    assert flow.render({"Name": "Asha"}) == "Hello Asha, your otp for login is {otp}"


@pytest.mark.parametrize(
    ("sound_id", "url", "error"),
    [
        ("", "", "Give a sound id or an audio URL."),
        ("abc", "https://x.example/a.mp3", "Give either a sound id or an audio URL, not both."),
    ],
)
def test_audio_needs_exactly_one_of_sound_id_and_url_in_forms(sound_id, url, error):
    with pytest.raises(ValidationError) as caught:
        AudioAsset(name="a", sound_id=sound_id, url=url).full_clean()
    assert error in caught.value.message_dict["sound_id"]


def test_it_rejects_ftp_audio_url():
    with pytest.raises(ValidationError) as caught:
        AudioAsset(name="a", url="ftp://files.example/a.mp3").full_clean()
    assert "url" in caught.value.message_dict


@pytest.mark.parametrize(("sound_id", "url"), [("", ""), ("abc", "https://x.example/a.mp3")])
def test_the_database_enforces_exactly_one_audio_source(db, sound_id, url):
    with pytest.raises(IntegrityError):
        AudioAsset.objects.create(name="a", sound_id=sound_id, url=url)


def test_an_audio_plays_its_sound_id_or_its_url(db):
    assert AudioAsset(sound_id="s-1").audio == "s-1"
    assert AudioAsset(url="https://x.example/a.mp3").audio == "https://x.example/a.mp3"


@pytest.mark.parametrize("number", ["+918068287602", "91 80682 87602", "12345", "080682876020"])
def test_a_bridge_stores_only_normalized_valid_numbers(db, number):
    with pytest.raises(ValidationError):
        Bridge(number=number, label="x").full_clean()


def test_a_valid_bridge_passes_validation(db):
    Bridge(number="918068287602", label="Bengaluru").full_clean()
    assert str(Bridge(number="918068287602", label="Bengaluru")) == "Bengaluru (+91 80 6828 7602)"
