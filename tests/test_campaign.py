"""Campaign files, rules and A/B variants, recipient tokens and the link secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import shutil
import stat
from collections import Counter
from pathlib import Path

import pytest

from billcast.jobs.campaign import (Campaign, CampaignError, CampaignErrors, ChoiceError, campaign_hash, choose,
                           load_campaign)
from billcast.jobs.links import link_secret, recipient_token
from billcast.jobs.records import parse_record, record_values
from billcast.renderer import BillcastError

from conftest import ROOT, sample

EXAMPLE = ROOT / "examples" / "campaign.toml"
STORYBOARDS = ("firm_reminder", "soft_reminder", "soft_reminder_b", "bill_explainer")
BASE = """\
id = "nov-bills"
input = "customers.jsonl"
public_url = "http://127.0.0.1:8000"
link_days = 60

[[rules]]
when = "debt and debt.days_past_due > 30"
storyboard = "storyboards/firm_reminder.yaml"

[[rules]]
when = "debt"
variants = { "storyboards/soft_reminder.yaml" = 50, "storyboards/soft_reminder_b.yaml" = 50 }

[[rules]]
storyboard = "storyboards/bill_explainer.yaml"
"""
SOFT = 'variants = { "storyboards/soft_reminder.yaml" = 50, "storyboards/soft_reminder_b.yaml" = 50 }\n'
FIRM = 'storyboard = "storyboards/firm_reminder.yaml"\n'
WHEN = 'when = "debt and debt.days_past_due > 30"\n'
SECRET = "s3cr3t-" + "x" * 40


TINY = """\
name: tiny
size: [320, 180]
fps: 10
default_language: en
translations:
  en: {hello: "Pay now, {{ first_name }}"}
scenes:
  - id: one
    duration: 1
    background: {color: "#0E4D64"}
    layers:
      - {kind: text, text: "{{ t.hello }}", box: [16, 40, 288, 100]}
"""  # a storyboard that validates in a millisecond: the shipped ones are checked with the example campaign


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A campaign folder: the sample customers, and tiny storyboards named like the shipped ones."""
    (tmp_path / "storyboards").mkdir()
    for name in STORYBOARDS:
        (tmp_path / "storyboards" / f"{name}.yaml").write_text(TINY, encoding="utf-8")
    shutil.copy(ROOT / "examples" / "customers.jsonl", tmp_path)
    return tmp_path


def write(folder: Path, text: str, name: str = "campaign.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problem(path: Path) -> CampaignError:
    """The one problem of a campaign file."""
    with pytest.raises(CampaignError) as info:
        load_campaign(path)
    errors = info.value.errors if isinstance(info.value, CampaignErrors) else [info.value]
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


@pytest.fixture(scope="module")
def example() -> Campaign:
    return load_campaign(EXAMPLE)


def values(customer_id: str) -> dict:
    return record_values(parse_record(sample(customer_id)))


# --- loading -----------------------------------------------------------------------------------

def test_the_example_campaign_loads_with_paths_resolved() -> None:
    campaign = load_campaign(EXAMPLE)
    root = ROOT.resolve()
    assert campaign.id == "demo-2026-11"
    assert campaign.folder.resolve() == EXAMPLE.parent.resolve()
    assert campaign.input.resolve() == root / "examples" / "customers.jsonl"
    assert campaign.store.startswith("file:///")
    assert Path(campaign.store.removeprefix("file://")).resolve() == root / "var" / "store"
    assert campaign.ledger.startswith("sqlite:////")
    assert Path(campaign.ledger.removeprefix("sqlite:///")).resolve() == root / "var" / "billcast.db"
    assert campaign.out.resolve() == root / "var" / "out" / "demo-2026-11"
    assert campaign.cache is not None and campaign.cache.resolve() == root / "var" / "cache"
    assert (campaign.public_url, campaign.pay_url, campaign.link_days) == ("http://127.0.0.1:8000",) * 2 + (60,)
    assert campaign.link_secret_env == "BILLCAST_LINK_SECRET"
    assert [rule.when for rule in campaign.rules] == ["debt and debt.days_past_due > 30", "debt", None]
    assert [[(v.name, v.variant, v.weight) for v in rule.variants] for rule in campaign.rules] == [
        [("firm_reminder", "", 1)],
        [("soft_reminder", "a", 50), ("soft_reminder_b", "b", 50)],
        [("bill_explainer", "", 1)],
    ]
    assert {p.resolve() for p in campaign.storyboards} == {root / "storyboards" / f"{n}.yaml" for n in STORYBOARDS}


def test_defaults_are_embedded_and_relative_to_the_campaign_folder(folder: Path) -> None:
    path = write(folder, 'id = "x"\ninput = "customers.jsonl"\n[[rules]]\nstoryboard = "storyboards/bill_explainer.yaml"\n')
    campaign = load_campaign(path)
    assert campaign.default_locale == "en-US"
    assert campaign.store == f"file://{folder / 'var' / 'store'}"
    assert campaign.ledger == f"sqlite:///{folder / 'var' / 'billcast.db'}"
    assert campaign.out == folder / "var" / "out" / "x"
    assert campaign.public_url == campaign.pay_url == "http://127.0.0.1:8000"
    assert (campaign.link_days, campaign.link_secret_env) == (60, "BILLCAST_LINK_SECRET")
    assert (campaign.cache, campaign.workers, campaign.size, campaign.store_endpoint_url) == (None, None, None, None)
    assert (campaign.brand_name, campaign.contact_url, campaign.optout_url) == (None, None, None)


def test_every_optional_key_is_read(folder: Path) -> None:
    text = edited('link_days = 60\n', """link_days = 90
default_locale = "it-IT"
store = "s3://lumen-bills/2026/11/"
store_endpoint_url = "http://127.0.0.1:9000/"
store_region = "eu-south-1"
pay_url = "https://pay.example.org/"
link_secret_env = "LUMEN_LINK_SECRET"
ledger = "postgresql+psycopg://billcast@db.example.org/billcast"
out = "/srv/billcast/out"
cache = "cache"
workers = 8
size = [640, 360]
brand_name = "Lumen Energia"
contact_url = "mailto:help@example.org"
optout_url = "https://example.org/optout/{token}"
""")
    campaign = load_campaign(write(folder, text))
    assert campaign.store == "s3://lumen-bills/2026/11"
    assert campaign.store_endpoint_url == "http://127.0.0.1:9000"
    assert (campaign.store_region, campaign.default_locale, campaign.link_days) == ("eu-south-1", "it-IT", 90)
    assert campaign.pay_url == "https://pay.example.org"
    assert campaign.ledger == "postgresql+psycopg://billcast@db.example.org/billcast"
    assert (campaign.out, campaign.cache) == (Path("/srv/billcast/out"), folder / "cache")
    assert (campaign.workers, campaign.size, campaign.brand_name) == (8, (640, 360), "Lumen Energia")
    assert campaign.optout_url == "https://example.org/optout/{token}"


def test_absolute_store_and_ledger_paths_stay(folder: Path) -> None:
    text = edited('link_days = 60\n', 'store = "file:///srv/store"\nledger = "sqlite:////srv/billcast.db"\n')
    campaign = load_campaign(write(folder, text))
    assert (campaign.store, campaign.ledger) == ("file:///srv/store", "sqlite:////srv/billcast.db")


def test_relative_paths_follow_the_campaign_file_not_the_working_directory(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(folder, BASE)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    campaign = load_campaign(path)
    assert campaign.input == folder / "customers.jsonl"
    assert campaign.rules[2].variants[0].storyboard == folder / "storyboards" / "bill_explainer.yaml"


INVALID = [  # (old, new, line, field, words)
    ('id = "nov-bills"\n', "", None, "id", "is missing; it is required"),
    ('id = "nov-bills"\n', 'id = "nov bills!"\n', 1, "id", "must be 1-64 letters, digits"),
    ('id = "nov-bills"\n', 'id = ".."\n', 1, "id", "starting with a letter or digit"),
    ('id = "nov-bills"\n', f'id = "{"x" * 65}"\n', 1, "id", "must be 1-64"),
    ('id = "nov-bills"\n', "id = 2026\n", 1, "id", "must be text (in quotes), got 2026"),
    ('input = "customers.jsonl"\n', 'input = "nobody.jsonl"\n', 2, "input", "no such file"),
    ('input = "customers.jsonl"\n', 'input = "storyboards/firm_reminder.yaml"\n', 2, "input", "must be JSON Lines"),
    ('link_days = 60\n', 'link_days = 60\npublc_url = "http://x"\n', 5, "publc_url",
     "is not a known key; did you mean 'public_url'?"),
    ('link_days = 60\n', 'link_days = 60\nwhen = "debt"\n', 5, "when", "belongs in a [[rules]] table"),
    (FIRM, FIRM + 'storybaord = "x.yaml"\n', 9, "rules[0].storybaord", "did you mean 'storyboard'?"),
    ('storyboard = "storyboards/bill_explainer.yaml"\n', 'storyboard = "storyboards/bill_explainer.yaml"\nworkers = 2\n',
     16, "rules[2].workers", "must come before the first [[rules]] table"),
    (FIRM, FIRM + SOFT, 6, "rules[0]", "exactly one of `storyboard` or `variants`, not both"),
    (FIRM, "", 6, "rules[0]", "exactly one of `storyboard` or `variants`, found neither"),
    ("= 50 }", "= 0 }", 12, "rules[1].variants", "weights must be positive integers, got 0"),
    ("= 50,", "= -5,", 12, "rules[1].variants", "weights must be positive integers, got -5"),
    ("= 50,", "= 0.5,", 12, "rules[1].variants", "weights must be positive integers, got 0.5"),
    ("= 50,", '= "50",', 12, "rules[1].variants", "weights must be positive integers, got '50'"),
    (SOFT, "variants = {}\n", 12, "rules[1].variants", "needs at least one storyboard"),
    (FIRM, 'storyboard = "storyboards/firm.yaml"\n', 8, "rules[0].storyboard", "no such storyboard"),
    ("soft_reminder_b.yaml", "soft_reminder_c.yaml", 12, "rules[1].variants", "soft_reminder_c.yaml"),
    (WHEN, 'when = "debt and"\n', 7, "rules[0].when", "is not a valid expression"),
    (WHEN, 'when = "debt.days_past_due >> 30"\n', 7, "rules[0].when", "is not a valid expression"),
    (WHEN, 'when = "debt | no_such_filter"\n', 7, "rules[0].when", "No filter named 'no_such_filter'"),
    (WHEN, 'when = ""\n', 7, "rules[0].when", "must not be empty"),
    (WHEN, 'when = "dept.days_past_due > 30"\n', 7, "rules[0].when",
     "'dept' is not a field of a customer record; did you mean 'debt'?"),
    (WHEN, 'when = "debt.days_past_du > 30"\n', 7, "rules[0].when",
     "debt has no field 'days_past_du'; did you mean 'days_past_due'?"),
    (WHEN, "when = \"debt.plan_offer['instalments'] > 3\"\n", 7, "rules[0].when",
     "debt.plan_offer has no field 'instalments'"),
    (WHEN, 'when = "bill.lines[0].amont > 3"\n', 7, "rules[0].when", "has no field 'amont'"),
    ('public_url = "http://127.0.0.1:8000"\n', 'public_url = "127.0.0.1:8000"\n', 3, "public_url",
     "must be an absolute http(s) URL"),
    ('public_url = "http://127.0.0.1:8000"\n', 'public_url = "https://example.org/?utm=x"\n', 3, "public_url",
     "no query or fragment"),
    ('link_days = 60\n', 'link_days = 60\npay_url = "ftp://example.org"\n', 5, "pay_url",
     "must be an absolute http(s) URL"),
    ('link_days = 60\n', 'link_days = 60\ncontact_url = "contact.html"\n', 5, "contact_url",
     "must be an absolute http(s) or mailto: URL"),
    ('link_days = 60\n', 'link_days = 60\nstore_endpoint_url = "minio:9000"\nstore = "s3://bills"\n', 5,
     "store_endpoint_url", "must be an absolute http(s) URL"),
    ('link_days = 60\n', 'link_days = 60\nstore_endpoint_url = "http://127.0.0.1:9000"\n', 5,
     "store_endpoint_url", "only used with an s3:// store"),
    ('link_days = 60\n', 'link_days = 60\nstore = "ftp://example.org/bills"\n', 5, "store",
     "must be file://PATH"),
    ('link_days = 60\n', 'link_days = 60\nstore = "s3://B"\n', 5, "store", "s3://BUCKET/PREFIX"),
    ('link_days = 60\n', 'link_days = 60\nledger = "not a database url"\n', 5, "ledger",
     "is not a SQLAlchemy database URL"),
    ('link_days = 60\n', "link_days = 0\n", 4, "link_days", "between 1 and 3650 days, got 0"),
    ('link_days = 60\n', "link_days = 3651\n", 4, "link_days", "between 1 and 3650 days, got 3651"),
    ('link_days = 60\n', 'link_days = "60"\n', 4, "link_days", "must be a whole number, got '60'"),
    ('link_days = 60\n', "link_days = true\n", 4, "link_days", "must be a whole number, got true"),
    ('link_days = 60\n', 'link_days = 60\nlink_secret_env = "MY SECRET"\n', 5, "link_secret_env",
     "name of an environment variable"),
    ('link_days = 60\n', 'link_days = 60\ndefault_locale = "english"\n', 5, "default_locale", "BCP 47"),
    ('link_days = 60\n', 'link_days = 60\ndefault_locale = "xx-YY"\n', 5, "default_locale", "BCP 47"),
    ('link_days = 60\n', "link_days = 60\nworkers = 0\n", 5, "workers", "at least 1"),
    ('link_days = 60\n', "link_days = 60\nsize = [1281, 720]\n", 5, "size", "two positive even numbers"),
    ('link_days = 60\n', "link_days = 60\nsize = [1280]\n", 5, "size", "two positive even numbers"),
    ('link_days = 60\n', 'link_days = 60\nsize = ["1280", 720]\n', 5, "size[0]", "must be a whole number"),
    ('link_days = 60\n', 'link_days = 60\nbrand_name = ""\n', 5, "brand_name", "must not be empty"),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "words"), INVALID,
                         ids=[f"{case[3]}-{i}" for i, case in enumerate(INVALID)])
def test_invalid_campaigns_name_the_key_and_line(folder: Path, old: str, new: str, line: int | None,
                                                 field: str, words: str) -> None:
    path = write(folder, edited(old, new))
    error = problem(path)
    assert (error.field, error.line) == (field, line), str(error)
    assert words in error.message
    where = f"{path}:{line}" if line else str(path)
    assert str(error).startswith(f"{where}: {field}: ")


def test_a_missing_or_single_rules_table_is_refused(folder: Path) -> None:
    head = BASE.split("[[rules]]")[0]
    for text in (head, head + '[rules]\nstoryboard = "storyboards/bill_explainer.yaml"\n', head + "rules = []\n"):
        error = problem(write(folder, text))
        assert error.field == "rules" and "needs at least one [[rules]] table" in error.message


def test_a_broken_storyboard_names_the_rule_and_includes_its_own_error(folder: Path) -> None:
    board = folder / "storyboards" / "soft_reminder_b.yaml"
    board.write_text(TINY.replace("fps: 10", "fps: 0"), encoding="utf-8")
    path = write(folder, BASE)
    error = problem(path)
    assert (error.field, error.line) == ("rules[1].variants", 12)
    assert "storyboards/soft_reminder_b.yaml is not a valid storyboard" in error.message
    assert "fps: Input should be greater than or equal to 1" in error.message


def test_a_storyboard_the_check_refuses_is_refused_by_the_campaign_with_the_same_words(folder: Path) -> None:
    from billcast.jobs import check_storyboard

    board = folder / "storyboards" / "soft_reminder_b.yaml"
    text = TINY.replace('{hello: "Pay now, {{ first_name }}"}',
                        "{hello: '{% if false %}{{ self }}{% endif %}Pay now, {{ first_name }}'}")
    board.write_text(text, encoding="utf-8")
    [checked] = check_storyboard(text, str(board), [], {}).problems
    assert "'self'" in checked.message
    error = problem(write(folder, BASE))
    assert error.field == "rules[1].variants" and f"  {checked.text}" in error.message.splitlines()


def test_a_toml_syntax_error_names_its_line(folder: Path) -> None:
    path = write(folder, edited('link_days = 60\n', "link_days = \n"))
    error = problem(path)
    assert error.line == 4 and error.field is None
    assert str(error).startswith(f"{path}:4: is not valid TOML: ")


def test_a_missing_campaign_file_is_a_campaign_error(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="cannot read"):
        load_campaign(tmp_path / "nowhere.toml")


def test_every_problem_is_reported_at_once_in_file_order(folder: Path) -> None:
    text = edited("= 50 }", "= 0 }", edited('id = "nov-bills"\n', 'id = "nov bills"\n'))
    with pytest.raises(CampaignErrors) as info:
        load_campaign(write(folder, text))
    assert [(e.line, e.field) for e in info.value.errors] == [(1, "id"), (12, "rules[1].variants")]
    assert info.value.exit_code == 2 and isinstance(info.value, BillcastError)
    assert str(info.value).count("\n") == 1
    text = edited(FIRM, 'storyboard = "storyboards/firm.yaml"\n', edited(WHEN, 'when = "debt and"\n'))
    with pytest.raises(CampaignErrors) as info:
        load_campaign(write(folder, text))
    assert [(e.line, e.field) for e in info.value.errors] == [(7, "rules[0].when"), (8, "rules[0].storyboard")]


def test_lines_are_found_in_subtables_and_dotted_keys(folder: Path) -> None:
    text = edited(SOFT, "")  # the variants as a [rules.variants] table, after the rule's own keys
    text = edited('[[rules]]\nstoryboard = "storyboards/bill_explainer.yaml"\n',
                  '[rules.variants]\n"storyboards/soft_reminder.yaml" = 50\n"storyboards/soft_reminder_b.yaml" = 0\n\n'
                  '[[rules]]\nstoryboard = "storyboards/bill_explainer.yaml"\n', text)
    error = problem(write(folder, text))
    assert (error.field, error.line) == ("rules[1].variants", 15)  # the line of the entry at fault


# --- choosing a storyboard ---------------------------------------------------------------------

@pytest.mark.parametrize(("customer_id", "name", "rule"), [
    ("IT-000124", "firm_reminder", 0),  # 45 days past due
    ("DE-000512", "firm_reminder", 0),  # 95
    ("US-001235", "firm_reminder", 0),  # 60
    ("EG-000790", "soft_reminder", 1),  # 30: not more than 30
    ("DE-000456", "soft_reminder", 1),  # 12
    ("EG-000801", "soft_reminder", 1),  # 5
    ("US-001302", "soft_reminder", 1),  # 21
    ("IT-000123", "bill_explainer", 2),  # no debt
    ("EG-000789", "bill_explainer", 2),
    ("US-001301", "bill_explainer", 2),
])
def test_rules_pick_by_how_late_the_customer_is(example: Campaign, customer_id: str, name: str, rule: int) -> None:
    choice = choose(example, values(customer_id), customer_id)
    assert choice is not None
    assert choice.name.removesuffix("_b") == name and choice.rule == rule
    assert choice.variant == ("" if rule != 1 else ("b" if choice.name.endswith("_b") else "a"))
    assert choice.storyboard.name == f"{choice.name}.yaml" and choice.storyboard.is_file()


def test_the_first_matching_rule_wins(folder: Path) -> None:
    text = f"""id = "nov-bills"
input = "customers.jsonl"
[[rules]]
when = "debt"
{SOFT}
[[rules]]
when = "debt.days_past_due > 30"
{FIRM}"""
    campaign = load_campaign(write(folder, text))
    choice = choose(campaign, values("DE-000512"), "DE-000512")  # 95 days late: the second rule would fit too
    assert choice is not None and choice.rule == 0 and choice.name.startswith("soft_reminder")


def test_no_matching_rule_gives_none(folder: Path) -> None:
    campaign = load_campaign(write(folder, BASE.split("\n[[rules]]\nstoryboard")[0]))
    assert choose(campaign, values("IT-000123"), "IT-000123") is None
    assert choose(campaign, values("IT-000124"), "IT-000124") is not None


@pytest.mark.parametrize(("when", "customer_id", "expected"), [
    ("debt.days_past_due > 30", "IT-000123", False),  # no debt: missing, and missing > 30 is false
    ("debt.days_past_due > 30", "IT-000124", True),
    ("debt.days_past_due <= 30", "IT-000123", False),
    ("30 < debt.days_past_due", "IT-000123", False),
    ("debt.plan_offer.installments >= 3", "IT-000123", False),  # a chain of missing values stays missing
    ("tags.commodity == 'gas'", "IT-000231", True),
    ("tags.commodity == 'gas'", "IT-000123", False),  # no such tag
    ("tags.commodity != 'gas'", "IT-000123", True),
    ("tags['segment'] == 'business'", "EG-000801", True),
    ("locale == 'it-IT' and bill.total > 90", "IT-000124", True),
    ("locale == 'it-IT' and bill.total > 100", "IT-000124", False),
    ("bill.usage | length > 12", "IT-000123", True),
    ("not debt", "IT-000123", True),
    ("debt.invoices | length >= 2", "US-001235", True),
])
def test_when_reads_the_record_and_missing_values_are_false(folder: Path, when: str, customer_id: str,
                                                            expected: bool) -> None:
    campaign = load_campaign(write(folder, edited(WHEN, f'when = "{when}"\n')))
    choice = choose(campaign, values(customer_id), customer_id)
    assert choice is not None and (choice.rule == 0) is expected


@pytest.mark.parametrize(("when", "customer_id", "words"), [
    ("debt.overdue_total * 2 > 100", "IT-000123", "'None' has no attribute 'overdue_total'"),
    ("first_name > 3", "IT-000123", "not supported between instances of 'str' and 'int'"),
    ("bill.total / 0 > 1", "IT-000123", "DivisionByZero"),
])
def test_a_when_that_fails_refuses_the_record(folder: Path, when: str, customer_id: str, words: str) -> None:
    path = write(folder, edited(WHEN, f'when = "{when}"\n'))
    with pytest.raises(ChoiceError) as info:
        choose(load_campaign(path), values(customer_id), customer_id)
    error = info.value
    assert (error.field, error.customer_id, error.line, error.exit_code) == ("rules[0].when", customer_id, 7, 3)
    assert str(error).startswith(f"{path}:7: customer {customer_id}: rules[0].when: cannot be evaluated")
    assert words in str(error)


def test_a_failing_when_does_not_show_the_record_s_values(folder: Path) -> None:
    campaign = load_campaign(write(folder, edited(WHEN, "when = \"first_name.encode('ascii')\"\n")))
    with pytest.raises(ChoiceError) as info:
        choose(campaign, values("EG-000790"), "EG-000790")
    assert "UnicodeEncodeError" in str(info.value)
    assert "\\u0641" not in str(info.value) and "فاطمة" not in str(info.value)


@pytest.mark.parametrize("when", [
    "first_name.__class__",
    "first_name.__class__.__mro__[1].__subclasses__()",
    "debt.__class__",
    "tags.__init__.__globals__",
    "first_name['__class__']",
    "lipsum.__globals__['os']",
    "cycler.__init__.__globals__",
    "namespace",
    "range(10)",
    "self",
    "config",
    "request.environ",
    "[1, 2] | random",
    "first_name | attr('__class__')",
])
def test_sandbox_escapes_are_refused_when_the_campaign_loads(folder: Path, when: str) -> None:
    error = problem(write(folder, edited(WHEN, f'when = "{when}"\n')))
    assert error.field == "rules[0].when"


@pytest.mark.parametrize("when", [
    "'{0.__class__.__mro__}'.format(first_name)",
    "tags.update({'segment': 'business'})",
    "tags.clear() or true",
    "bill.lines.append(1)",
    "tags.pop('segment')",
])
def test_sandbox_escapes_are_refused_when_run(folder: Path, when: str) -> None:
    campaign = load_campaign(write(folder, edited(WHEN, f'when = "{when}"\n')))
    record = values("IT-000123")
    before = repr(record)
    with pytest.raises(ChoiceError, match="cannot be evaluated for this record: .*(unsafe|not allowed|safely)"):
        choose(campaign, record, "IT-000123")
    assert repr(record) == before  # nothing was changed


# --- A/B variants ------------------------------------------------------------------------------

def split_campaign(folder: Path, weights: tuple[int, ...], campaign_id: str = "ab-test") -> Campaign:
    names = ("soft_reminder", "soft_reminder_b", "firm_reminder")
    table = ", ".join(f'"storyboards/{names[i]}.yaml" = {w}' for i, w in enumerate(weights))
    return load_campaign(write(folder, f'id = "{campaign_id}"\ninput = "customers.jsonl"\n'
                                       f"[[rules]]\nvariants = {{ {table} }}\n"))


@pytest.mark.parametrize("weights", [(50, 50), (90, 10), (1, 1), (60, 30, 10)])
def test_variants_split_customers_close_to_their_weights(folder: Path, weights: tuple[int, ...]) -> None:
    campaign = split_campaign(folder, weights)
    counts = Counter()
    for n in range(10_000):
        choice = choose(campaign, {}, f"C-{n:06d}")
        assert choice is not None
        counts[choice.variant] += 1
    shares = [counts[letter] / 10_000 for letter in "abc"[:len(weights)]]
    for share, weight in zip(shares, weights):
        assert abs(share - weight / sum(weights)) < 0.03, (shares, weights)


def test_variants_are_the_sha256_of_campaign_and_customer_walked_by_weight(folder: Path, example: Campaign) -> None:
    campaign = split_campaign(folder, (90, 10))
    for n in range(500):
        customer_id = f"C-{n:06d}"
        bucket = int(hashlib.sha256(f"ab-test\0{customer_id}".encode()).hexdigest(), 16) % 100
        assert choose(campaign, {}, customer_id).variant == ("a" if bucket < 90 else "b")  # type: ignore[union-attr]
    # pinned, so that a change of the assignment cannot go unnoticed: a re-run keeps everyone's variant
    picked = {c: choose(example, values(c), c).variant for c in ("DE-000456", "EG-000790", "EG-000801", "US-001302")}  # type: ignore[union-attr]
    assert picked == {"DE-000456": "b", "EG-000790": "a", "EG-000801": "a", "US-001302": "a"}


def test_another_campaign_id_splits_customers_differently(folder: Path) -> None:
    one, other = split_campaign(folder, (50, 50), "nov"), split_campaign(folder, (50, 50), "dec")
    ids = [f"C-{n:04d}" for n in range(1000)]
    moved = sum(choose(one, {}, c).variant != choose(other, {}, c).variant for c in ids)  # type: ignore[union-attr]
    assert 400 < moved < 600


def test_a_campaign_survives_pickling_for_worker_processes(example: Campaign) -> None:
    campaign = example
    copy = pickle.loads(pickle.dumps(campaign))
    assert copy == campaign
    assert choose(copy, values("IT-000124"), "IT-000124") == choose(campaign, values("IT-000124"), "IT-000124")


# --- the campaign's hash -----------------------------------------------------------------------

def test_campaign_hash_follows_what_shapes_outputs(folder: Path) -> None:
    base = campaign_hash(load_campaign(write(folder, BASE)))
    assert len(base) == 64 and base == campaign_hash(load_campaign(write(folder, BASE)))
    moved = folder / "moved"
    shutil.copytree(folder, moved, ignore=shutil.ignore_patterns("moved"))
    assert campaign_hash(load_campaign(moved / "campaign.toml")) == base  # where the file lives does not count
    same = edited('link_days = 60\n', 'link_days = 60\nworkers = 4\nout = "elsewhere"\nledger = "sqlite:///x.db"\n')
    assert campaign_hash(load_campaign(write(folder, same))) == base
    for old, new in [("= 50 }", "= 40 }"), (WHEN, 'when = "debt and debt.days_past_due > 60"\n'),
                     ('public_url = "http://127.0.0.1:8000"\n', 'public_url = "https://bills.example.org"\n'),
                     ('id = "nov-bills"\n', 'id = "dec-bills"\n'),
                     ('link_days = 60\n', 'link_days = 60\nsize = [640, 360]\n')]:
        assert campaign_hash(load_campaign(write(folder, edited(old, new)))) != base, new
    board = folder / "storyboards" / "soft_reminder_b.yaml"
    board.write_text(board.read_text(encoding="utf-8").replace("Pay now", "Pay today"), encoding="utf-8")
    assert campaign_hash(load_campaign(write(folder, BASE))) != base


# --- tokens and the link secret ------------------------------------------------------------------

def test_recipient_token_is_the_first_128_bits_of_the_hmac() -> None:
    secret = SECRET.encode()
    token = recipient_token(secret, "nov-bills", "IT-000123")
    digest = hmac.new(secret, b"nov-bills\x00IT-000123", "sha256").digest()
    assert token == base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
    assert len(token) == 22 and token.replace("-", "").replace("_", "").isalnum()
    assert token == recipient_token(secret, "nov-bills", "IT-000123")
    others = {recipient_token(secret, "dec-bills", "IT-000123"), recipient_token(secret, "nov-bills", "IT-000124"),
              recipient_token(b"another secret of thirty-two chars", "nov-bills", "IT-000123"),
              recipient_token(secret, "nov-bills\0IT", "000123")}
    assert token not in others and len(others) == 4
    assert "IT-000123" not in token and "nov" not in token


def test_link_secret_from_the_environment() -> None:
    assert link_secret("BILLCAST_LINK_SECRET", environ={"BILLCAST_LINK_SECRET": SECRET}) == SECRET.encode()


def test_a_short_link_secret_is_refused_without_showing_it() -> None:
    short = "tooshort-" + "q" * 20
    with pytest.raises(CampaignError) as info:
        link_secret("LUMEN_SECRET", environ={"LUMEN_SECRET": short})
    assert info.value.field == "link_secret_env" and "LUMEN_SECRET" in str(info.value)
    assert "at least 32 characters" in str(info.value) and short not in str(info.value)


def test_an_unset_link_secret_without_keep_says_how_to_set_it() -> None:
    with pytest.raises(CampaignError) as info:
        link_secret("LUMEN_SECRET", environ={"OTHER": SECRET})
    message = str(info.value)
    assert info.value.field == "link_secret_env" and info.value.exit_code == 2
    assert "$LUMEN_SECRET is not set" in message and "export LUMEN_SECRET=" in message
    assert SECRET not in message


def test_an_unset_link_secret_with_keep_is_generated_once_and_kept(tmp_path: Path) -> None:
    keep = tmp_path / "var" / "link-secret"
    first = link_secret("BILLCAST_LINK_SECRET", environ={}, keep=keep)
    assert len(first) == 64 and bytes.fromhex(first.decode())  # 32 random bytes, hex
    assert stat.S_IMODE(keep.stat().st_mode) == 0o600
    assert link_secret("BILLCAST_LINK_SECRET", environ={"BILLCAST_LINK_SECRET": ""}, keep=keep) == first
    assert [p.name for p in keep.parent.iterdir()] == ["link-secret"]  # no temporary file left
    assert link_secret("BILLCAST_LINK_SECRET", environ={}, keep=tmp_path / "other") != first
    # the environment wins over the kept secret
    assert link_secret("BILLCAST_LINK_SECRET", environ={"BILLCAST_LINK_SECRET": SECRET}, keep=keep) == SECRET.encode()


def test_a_damaged_kept_secret_is_refused_without_showing_it(tmp_path: Path) -> None:
    keep = tmp_path / "link-secret"
    keep.write_text("abc123\n", encoding="ascii")
    with pytest.raises(CampaignError, match="shorter than 32 characters") as info:
        link_secret("BILLCAST_LINK_SECRET", environ={}, keep=keep)
    assert "abc123" not in str(info.value)
