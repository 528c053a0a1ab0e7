"""Experiments end to end, tiny: waves, the holdout, propensities, learning, resuming, the report and export."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from billcast.cli import main
from billcast.jobs.campaign import load_campaign
from billcast.jobs.experiments.results import report_rows
from billcast.jobs.ledger import ImportedPayment, Ledger
from billcast.jobs.run import run_campaign
from billcast.jobs.store import open_store

from conftest import ROOT

pytestmark = pytest.mark.slow
SECRET = b"e" * 40


def write_campaign(folder: Path, *, holdout: float = 0.3, waves: int = 2, policy: str = "thompson",
                   seed: int = 7, floor: float = 0.05) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.jsonl").write_text((ROOT / "examples" / "customers.jsonl").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    boards = ROOT / "storyboards"
    (folder / "campaign.toml").write_text(f"""\
id = "exp-2026-11"
input = "customers.jsonl"
store = "file://store"
public_url = "https://bills.lumen.test"
ledger = "sqlite:///ledger.db"
out = "out"
cache = "cache"
size = [160, 90]

[[rules]]
storyboard = "{boards / 'bill_explainer.yaml'}"

[experiment]
when = "debt"
arms = {{ friendly = "{boards / 'soft_reminder.yaml'}", direct = "{boards / 'soft_reminder_b.yaml'}" }}
policy = "{policy}"
holdout = {holdout}
floor = {floor}
seed = {seed}
waves = {waves}
window_days = 14

[experiment.segments]
lateness = "'over 30' if debt.days_past_due > 30 else 'up to 30'"
""", encoding="utf-8")
    return folder / "campaign.toml"


def manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "out" / "manifest.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def allocations(folder: Path) -> dict[str, tuple]:
    with Ledger(f"sqlite:///{folder / 'ledger.db'}") as ledger:
        return {a.customer_id: (a.wave, a.segment, a.arm, a.propensity) for a in ledger.allocations("exp-2026-11")}


def run(path: Path, wave: int | None = None, **kw):
    return run_campaign(load_campaign(path), secret=SECRET, workers=1, wave=wave, **kw)


def test_the_holdout_is_recorded_and_counted_but_never_rendered_or_published(tmp_path) -> None:
    path = write_campaign(tmp_path / "c", holdout=0.5, waves=1)
    counts = run(path)
    rows = {row["customer_id"]: row for row in manifest(tmp_path / "c")}
    held = [cid for cid, row in rows.items() if row["status"] == "holdout"]
    contacted = [cid for cid, row in rows.items() if row["variant"] in ("friendly", "direct")]
    assert held and contacted and counts.held_out == len(held)
    store = open_store(f"file://{tmp_path / 'c' / 'store'}")
    published = {key.split("/")[1] for key in store.list("r/")}
    with Ledger(f"sqlite:///{tmp_path / 'c' / 'ledger.db'}") as ledger:
        for cid in held:
            assert rows[cid]["link"] == "" and float(rows[cid]["propensity"]) == 0.5
            assert ledger.recipient("exp-2026-11", cid) is None  # no recipient row: nothing was published
            assert not (tmp_path / "c" / "out" / "recipients" / cid).exists()
        tokens = {ledger.recipient("exp-2026-11", cid).token for cid in contacted}
    assert tokens <= published and len(published) == counts.published
    kept = allocations(tmp_path / "c")
    assert all(kept[cid][2] is None for cid in held) and all(kept[cid][2] for cid in contacted)


def test_propensities_are_in_range_and_a_segments_shares_sum_to_one(tmp_path) -> None:
    path = write_campaign(tmp_path / "c", waves=1)
    run(path)
    for row in manifest(tmp_path / "c"):
        if row["propensity"]:
            assert 0 < float(row["propensity"]) <= 1
    with Ledger(f"sqlite:///{tmp_path / 'c' / 'ledger.db'}") as ledger:
        segments = {a.segment for a in ledger.allocations("exp-2026-11")}
        for segment in segments:
            shares = ledger.shares("exp-2026-11", 1, segment)
            assert set(shares) == {"friendly", "direct"} and sum(shares.values()) == pytest.approx(1.0)


def test_later_waves_wait_and_the_same_seed_allocates_the_same_way(tmp_path) -> None:
    first, second = write_campaign(tmp_path / "a"), write_campaign(tmp_path / "b")
    counts = run(first, wave=1)
    rows = manifest(tmp_path / "a")
    waiting = [row for row in rows if row["status"] == "waiting"]
    assert counts.waiting == len(waiting) > 0 and all(row["wave"] == "2" for row in waiting)
    run(first, wave=2)
    run(second, wave=1)
    run(second, wave=2)
    assert allocations(tmp_path / "a") == allocations(tmp_path / "b")
    assert not [row for row in manifest(tmp_path / "a") if row["status"] == "waiting"]


def test_a_wave_killed_midway_and_resumed_after_new_payments_allocates_as_it_first_did(tmp_path) -> None:
    path = write_campaign(tmp_path / "c", waves=2, holdout=0.0)
    run(path, wave=1)
    calls = {"n": 0}

    def dies_after_one(settings, tasks):  # the run "dies" after its first recipient of wave 2
        from billcast.jobs.run.worker import failed_all, work_chunk

        calls["n"] += 1
        return work_chunk(settings, tasks) if calls["n"] == 1 else failed_all(tasks, "killed")

    run(path, wave=2, chunk=1, work_fn=dies_after_one)
    first = allocations(tmp_path / "c")
    with Ledger(f"sqlite:///{tmp_path / 'c' / 'ledger.db'}") as ledger:  # wave 1's arm now looks excellent
        ledger.import_outcomes("exp-2026-11", [
            ImportedPayment(a.customer_id, a.allocated_at + dt.timedelta(days=1), 10000, "EUR", f"ref-{a.customer_id}")
            for a in ledger.allocations("exp-2026-11", before_wave=2) if a.arm == "friendly"])
    run(path, wave=2)
    assert allocations(tmp_path / "c") == first
    assert not [row for row in manifest(tmp_path / "c") if row["status"] == "failed"]


def test_the_report_and_export_read_the_ledger_and_imported_outcomes_measure_the_holdout(tmp_path, capsys) -> None:
    path = write_campaign(tmp_path / "c", holdout=0.4, waves=1, policy="fixed")
    run(path)
    kept = allocations(tmp_path / "c")
    payer = next(cid for cid, (_, _, arm, _) in kept.items() if arm is None)
    outcomes = tmp_path / "paid.csv"
    with Ledger(f"sqlite:///{tmp_path / 'c' / 'ledger.db'}") as ledger:
        when = next(a.allocated_at for a in ledger.allocations("exp-2026-11") if a.customer_id == payer)
    outcomes.write_text("customer_id,paid_at,amount,currency,reference\n"
                        f"{payer},{(when + dt.timedelta(days=2)).isoformat()},120.50,EUR,bank-1\n"
                        f"{payer},{(when + dt.timedelta(days=40)).isoformat()},9.00,EUR,bank-2\n", encoding="utf-8")
    assert main(["experiment", "outcomes", str(path), str(outcomes)]) == 0
    assert main(["experiment", "outcomes", str(path), str(outcomes)]) == 0  # imported once, by reference
    assert "0 payments imported, 2 already known" in capsys.readouterr().out
    assert main(["experiment", "export", str(path), "--out", str(tmp_path / "export.csv")]) == 0
    with (tmp_path / "export.csv").open(encoding="utf-8") as f:
        exported = {row["customer_id"]: row for row in csv.DictReader(f)}
    assert set(exported) == set(kept)
    assert exported[payer]["holdout"] == "yes" and exported[payer]["paid"] == "yes"
    assert exported[payer]["amount"] == "12050"  # within the 14-day window only
    assert set(next(iter(exported.values()))) == {"customer_id", "wave", "segment", "arm", "propensity", "holdout",
                                                  "contacted", "paid", "amount"}
    assert main(["experiment", "report", str(path), "--csv", str(tmp_path / "report.csv")]) == 0
    text = capsys.readouterr().out
    assert "Outcomes from imported payments" in text and "holdout" in text and "small: not ranked" in text
    campaign = load_campaign(path)
    with Ledger(campaign.ledger) as ledger:
        rows, source = report_rows(ledger, campaign)
    holdout_rows = [r for r in rows if r.arm == "holdout"]
    assert source == "imported" and sum(r.paid for r in holdout_rows if r.segment != "all segments") == 1


def test_a_bad_outcomes_file_names_its_line_and_column(tmp_path, capsys) -> None:
    path = write_campaign(tmp_path / "c", waves=1)
    bad = tmp_path / "paid.csv"
    bad.write_text("customer_id,paid_at,amount,currency,reference\nIT-1,yesterday,1.00,EUR,r1\n", encoding="utf-8")
    assert main(["experiment", "outcomes", str(path), str(bad)]) == 3
    assert f"{bad}:2: paid_at: not an ISO 8601 time" in capsys.readouterr().err
    bad.write_text("customer_id,paid_at,amount,currency,reference\nIT-1,2026-12-01,1.005,EUR,r1\n", encoding="utf-8")
    assert main(["experiment", "outcomes", str(path), str(bad)]) == 3
    assert "amount: must be a non-negative amount with at most 2 decimals" in capsys.readouterr().err


def test_waves_and_experiments_are_checked_on_the_command_line(tmp_path, capsys) -> None:
    path = write_campaign(tmp_path / "c", waves=2)
    assert main(["run", str(path), "--wave", "3"]) == 10
    assert "--wave: must be 1 to 2" in capsys.readouterr().err
    plain = tmp_path / "c" / "plain.toml"
    plain.write_text(path.read_text(encoding="utf-8").split("[experiment]")[0], encoding="utf-8")
    assert main(["experiment", "report", str(plain)]) == 10
    assert "has no [experiment]" in capsys.readouterr().err


def test_the_shipped_example_loads() -> None:
    campaign = load_campaign(ROOT / "examples" / "experiment.toml")
    e = campaign.experiment
    assert e is not None and len(e.arms) == 2 and e.holdout == 0.1 and e.waves == 2
    assert json.loads(json.dumps([a.variant for a in e.arms])) == ["friendly", "direct"]


def test_the_experiment_page_beside_the_report(tmp_path) -> None:
    from billcast.service import ServiceSettings, create_app

    path = write_campaign(tmp_path / "c", holdout=0.4, waves=1, policy="fixed")
    run(path)
    token = "t" * 40
    settings = ServiceSettings(campaigns=(load_campaign(path),), webhook_secret="whsec_x", session_secret=b"k" * 32,
                               admin_token=token, secure_cookies=False)
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/reports/exp-2026-11/experiment").status_code == 401
    page = client.get("/reports/exp-2026-11/experiment", headers=headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assert "<svg" in html and "holdout" in html and "lateness=" in html and "All segments" in html
    assert 'href="/reports/exp-2026-11/experiment"' in client.get("/reports/exp-2026-11", headers=headers).get_data(
        as_text=True)
    csv_text = client.get("/reports/exp-2026-11/experiment.csv", headers=headers).get_data(as_text=True)
    assert csv_text.startswith("segment,arm,recipients,paid,paid_rate")
    assert client.get("/reports/nope/experiment", headers=headers).status_code == 404


def test_a_link_secret_file_is_read_when_the_variable_is_unset(tmp_path, monkeypatch, capsys) -> None:
    from billcast.jobs.links import link_secret

    monkeypatch.delenv("BILLCAST_LINK_SECRET", raising=False)
    path = write_campaign(tmp_path / "c", waves=1)
    path.write_text(path.read_text(encoding="utf-8").replace('cache = "cache"', 'cache = "cache"\nlink_secret_file = "secret"'),
                    encoding="utf-8")
    campaign = load_campaign(path)
    assert main(["run", str(path), "--quiet"]) == 2
    assert f"cannot read the link secret file {tmp_path / 'c' / 'secret'}" in capsys.readouterr().err
    (tmp_path / "c" / "secret").write_text("short\n")
    with pytest.raises(Exception, match="shorter than 32"):
        link_secret("BILLCAST_LINK_SECRET", environ={}, file=campaign.link_secret_file)
    (tmp_path / "c" / "secret").write_text("f" * 40 + "\n")
    assert link_secret("BILLCAST_LINK_SECRET", environ={}, file=campaign.link_secret_file) == b"f" * 40
    assert link_secret("BILLCAST_LINK_SECRET", environ={"BILLCAST_LINK_SECRET": "v" * 40},
                       file=campaign.link_secret_file) == b"v" * 40  # the variable wins


@pytest.mark.parametrize("change, message", [
    (('policy = "thompson"', 'policy = "greedy"'), 'experiment.policy: must be "fixed"'),
    (("holdout = 0.3", "holdout = 0.9"), "experiment.holdout: must be a share from 0 to 0.5"),
    (("floor = 0.05", "floor = 0.6"), "experiment.floor: must be from 0 to 1/2"),
    (("waves = 2", "waves = 0"), "experiment.waves: must be 1 to 100"),
    (("arms = { friendly", "arms = { Friendly"), "experiment.arms: arm names are 1-32 lower-case"),
    (("seed = 7", "seed = 7\nweights = { friendly = 1 }"), "experiment.weights: must give a weight to each arm"),
    (("seed = 7", "seed = 7\nhold_out = 0.1"), "experiment.hold_out: is not an experiment key; did you mean 'holdout'"),
    (('when = "debt"', 'when = "dept"'), "experiment.when: 'dept' is not a field of a customer record"),
    (("soft_reminder_b.yaml", "nowhere.yaml"), "experiment.arms: no such storyboard"),
])
def test_a_bad_experiment_is_refused_naming_its_key_and_line(tmp_path, change, message) -> None:
    from billcast.jobs.campaign import CampaignErrors

    path = write_campaign(tmp_path / "c")
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(CampaignErrors) as refused:
        load_campaign(path)
    assert message in str(refused.value)
    assert f"{path}:" in str(refused.value)
