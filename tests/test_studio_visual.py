"""The visual studio's endpoints through Flask's test client: planned layers to point at, structured edits,
frames of a drag, merge fields, the translations grid, the JSON Schema, and storyboards as documents.
Assets have their own file (test_studio_assets.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from PIL import Image

from billcast.jobs.campaign import load_campaign
from billcast.renderer import StoryboardModel
from billcast.schemas import json_schema
from billcast.service.context import Service

from conftest import ROOT
from test_studio import GREETING, Studio, differs, make_app, shared, st  # noqa: F401 (the fixtures)


def edit(st: Studio, *ops: dict, text: str | None = None, name: str = "bill_explainer", **ask):
    return st.post(f"/studio/{name}/edit", {"text": st.live(name) if text is None else text, "ops": list(ops), **ask})


def billcast_check(path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "billcast.cli", "check", str(path), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


# --- the layers a click hits -----------------------------------------------------------------------


def test_layers_are_the_planned_boxes_topmost_first_with_their_place_in_the_storyboard(shared) -> None:
    st = shared
    body = st.post("/studio/bill_explainer/layers", {"text": st.live(), "customer": st.sample("Maria")}).get_json()
    assert body["size"] == [1280, 720] and body["board"] == [1280, 720] and body["mirrored"] is False
    intro = body["scenes"][0]
    assert (intro["id"], intro["start"], intro["end"]) == ("intro", 0.0, 3.52)  # 3.5 s, in whole frames
    assert [(layer["index"], layer["kind"]) for layer in intro["layers"]] == [(2, "text"), (1, "rect"), (0, "image")]
    tagline = intro["layers"][0]
    assert tagline["box"] == [140, 430, 1000, 70] and tagline["line"] == 139
    assert tagline["anims"] == [{"type": "fade_in", "start": 1.0, "duration": 0.6, "offset": [0.0, 0.0]}]
    usage = body["scenes"][3]
    assert [layer["index"] for layer in usage["layers"]] == [1, 0]  # `when: not bill.usage` is false for Maria


def test_in_a_right_to_left_language_the_boxes_are_mirrored_as_the_frame_draws_them(shared) -> None:
    st = shared
    body = st.post("/studio/bill_explainer/layers", {"text": st.live(), "customer": st.sample("Maria"),
                                                     "language": "ar"}).get_json()
    assert body["mirrored"] is True and body["language"] == "ar"
    logo = next(layer for layer in body["scenes"][1]["layers"] if layer["kind"] == "image")
    assert logo["box"] == [1280 - 80 - 200, 48, 200, 50]


def test_a_text_with_problems_has_no_layers_but_its_problems(shared) -> None:
    st = shared
    broken = st.live().replace("fps: 25", "fps: 0")
    response = st.post("/studio/bill_explainer/layers", {"text": broken})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "fps"


# --- structured edits -------------------------------------------------------------------------------


def test_an_edit_changes_one_line_and_comes_back_checked(shared) -> None:
    st = shared
    before = st.live()
    response = edit(st, {"op": "set", "path": ["scenes", 0, "layers", 2, "color"], "value": "amber"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] and body["preview"]["duration"] == 30.0
    assert body["doc"]["scenes"][0]["layers"][2]["color"] == "amber"
    lines = [(a, b) for a, b in zip(before.splitlines(), body["text"].splitlines()) if a != b]
    assert lines == [('        color: "#FFFFFF"', '        color: "amber"')]
    assert st.live() == before  # nothing is written: saving is the editor's to do


@pytest.mark.parametrize("path,value,field,message", [
    (["scenes", 0, "layers", 2, "color"], "reddish", "scenes[0].layers[2].color", "not a colour: 'reddish'"),
    (["scenes", 0, "layers", 2, "font", "size"], -3, "scenes[0].layers[2].font.size", "greater than 0"),
    (["scenes", 1, "duration"], 0, "scenes[1].duration", "greater than 0"),
    (["scenes", 0, "layers", 2, "text"], "{{ frist_name }}", "scenes[0].layers[2].text", "frist_name"),
    (["scenes", 0, "layers", 0, "src"], "../../etc/passwd", "scenes[0].layers[0].src", "may not leave it"),
])
def test_a_bad_value_comes_back_with_the_same_problem_billcast_check_finds(shared, tmp_path, path, value, field,
                                                                            message) -> None:
    st = shared
    body = edit(st, {"op": "set", "path": path, "value": value}, customer=st.sample("Maria")).get_json()
    found = [e for e in body["errors"] if e["field"] == field]
    assert body["ok"] is False and found and message in found[0]["message"]
    written = tmp_path / "bill_explainer.yaml"
    written.write_text(body["text"], encoding="utf-8")
    shutil.copy(st.root / "examples" / "maria.json", tmp_path / "maria.json")
    checked = billcast_check(written, "--customer", str(tmp_path / "maria.json"))
    assert checked.returncode == 2 and found[0]["message"] in checked.stdout + checked.stderr


@pytest.mark.parametrize("ops,status,words", [
    ([{"op": "set", "path": ["scenes", 9, "duration"], "value": 2}], 400, "no item 9"),
    ([{"op": "set", "path": ["__globals__"], "value": 2}], 400, "not a key"),
    ("set everything", 400, "ops must be a list"),
    ([{"op": "set", "path": ["description"], "value": "x" * 300_000}], 413, "at most 256 KB"),
])
def test_edits_that_cannot_apply_are_refused_with_why(shared, ops, status, words) -> None:
    st = shared
    response = st.post("/studio/bill_explainer/edit", {"text": st.live(), "ops": ops})
    assert response.status_code == status and words in response.get_json()["error"]


def test_an_edit_of_a_text_that_is_not_yaml_says_to_fix_it_in_the_code_view(shared) -> None:
    st = shared
    response = edit(st, {"op": "set", "path": ["name"], "value": "x"}, text="name: [broken\n")
    assert response.status_code == 400 and "code view" in response.get_json()["error"]


def test_an_edit_of_a_text_whose_aliases_would_explode_stays_small_and_is_refused_by_the_check(shared) -> None:
    st = shared
    lines = ["name: x", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = "\n".join(lines + ["scenes: [{id: s, duration: 1}]"]) + "\n"
    response = edit(st, {"op": "set", "path": ["name"], "value": "y"}, text=text)
    body = response.get_json()
    assert response.status_code == 200 and len(body["text"]) < 2 * len(text)
    assert "expands to more than 100,000 values" in body["errors"][0]["message"] and "doc" not in body


def test_a_visual_edit_saved_keeps_every_comment_and_passes_billcast_check(st) -> None:
    ops = [{"op": "set", "path": ["scenes", 0, "layers", 2, "box"], "value": [180, 430, 1000, 70]},
           {"op": "set", "path": ["translations", "it", "tagline"], "value": "La bolletta, in breve"},
           {"op": "set", "path": ["scenes", 1, "duration"], "value": 4.5},
           {"op": "duplicate", "path": ["scenes"], "index": 2}]
    text = edit(st, *ops).get_json()["text"]
    comments = [line for line in st.live().splitlines() if line.lstrip().startswith("#")]
    assert st.save(text, base=_digest(st.live())).status_code == 200
    saved = st.live()
    assert [line for line in saved.splitlines() if line.lstrip().startswith("#")] == comments
    data = yaml.safe_load(saved)
    assert data["scenes"][0]["layers"][2]["box"] == [180, 430, 1000, 70] and data["scenes"][3]["id"] == "total_2"
    assert billcast_check(st.boards / "bill_explainer.yaml").returncode == 0


def test_a_visual_edit_against_a_version_someone_else_saved_is_refused_and_nothing_is_lost(st) -> None:
    base = _digest(st.live())
    theirs = st.live().replace(GREETING, 'greeting: "Buongiorno {{ first_name }},"')
    assert st.save(theirs).status_code == 200
    mine = edit(st, {"op": "set", "path": ["scenes", 0, "layers", 2, "color"], "value": "amber"},
                text=theirs.replace("Buongiorno", "Ciao")).get_json()["text"]
    refused = st.save(mine, base=base)
    assert refused.status_code == 409 and refused.get_json()["conflict"]
    assert st.live() == theirs
    assert st.save(mine, base=base, force=True).status_code == 200 and st.live() == mine


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- frames: of a drag not yet written, and thumbnails ------------------------------------------------


def test_a_frame_of_a_drag_shows_the_moved_layer_without_changing_the_text(shared) -> None:
    st = shared
    text = st.live()
    ask = {"text": text, "t": 2.5, "customer": st.sample("Maria")}
    still = Image.open(io.BytesIO(st.post("/studio/bill_explainer/frame", ask).data)).convert("RGB")
    moved = st.post("/studio/bill_explainer/frame", dict(ask, ops=[
        {"op": "set", "path": ["scenes", 0, "layers", 0, "box"], "value": [40, 220, 600, 150]}]))
    assert moved.status_code == 200 and moved.mimetype == "image/jpeg"
    dragged = Image.open(io.BytesIO(moved.data)).convert("RGB")
    assert differs(still, dragged) > 2000
    assert differs(still.crop((700, 0, 1280, 400)), dragged.crop((700, 0, 1280, 400))) > 500  # the logo left there
    assert st.live() == text
    flat = st.post("/studio/bill_explainer/frame", dict(ask, ops=[
        {"op": "set", "path": ["scenes", 0, "layers", 0, "box"], "value": [40, 220, 600, 0]}]))
    assert flat.status_code == 422 and "width and height must be > 0" in flat.get_json()["error"]
    for ops in ([{"op": "set", "path": ["scenes", 0, "duration"], "value": 1}], [{"op": "drop", "path": ["name"]}],
                [{"op": "set", "path": ["translations", "it", "greeting"], "value": "{{ config }}"}]):
        refused = st.post("/studio/bill_explainer/frame", dict(ask, ops=ops))
        assert refused.status_code == 400, ops  # a frame previews boxes; everything else goes through an edit


def test_a_thumbnail_frame_is_small(shared) -> None:
    st = shared
    response = st.post("/studio/bill_explainer/frame", {"text": st.live(), "t": 1, "width": 300})
    assert Image.open(io.BytesIO(response.data)).size == (320, 180)


# --- merge fields, the translations grid, the schema ------------------------------------------------------


def test_fields_list_the_customers_values_the_translations_and_the_filters(shared) -> None:
    st = shared
    body = st.post("/studio/bill_explainer/fields", {"text": st.live(), "customer": st.sample("Maria")}).get_json()
    fields = {f["path"]: f for f in body["fields"]}
    assert fields["first_name"]["value"] == "Maria" and fields["first_name"]["kind"] == "text"
    assert fields["bill.total"]["kind"] == "number" and fields["bill.due_date"]["kind"] == "date"
    assert fields["bill.lines"]["kind"] == "list" and fields["bill.lines"]["value"].endswith("items")
    assert fields["t.tagline"]["value"] == "La tua bolletta, spiegata in 30 secondi"
    assert {"money", "date", "month", "number", "percent"} <= {f["name"] for f in body["filters"]}
    assert body["links"] == ["page", "pay", "plan"]


def test_the_grid_lists_every_text_in_every_language_with_missing_and_overflowing_ones(st) -> None:
    text = st.live().replace("    breakdown: Come si compone la bolletta\n", "").replace(
        "tagline: Ihre Rechnung, erklärt in 30 Sekunden",
        "tagline: Ihre monatliche Energieabrechnung, ausführlich und verständlich erklärt in nur dreißig Sekunden")
    body = st.post("/studio/bill_explainer/translations", {"text": text, "customer": st.sample("Maria")}).get_json()
    assert body["default"] == "en" and body["languages"] == ["en", "ar", "de", "it"]
    assert body["keys"][:3] == ["tagline", "greeting", "period"] and len(body["keys"]) == 22
    assert body["cells"]["breakdown"]["it"]["text"] is None
    assert body["cells"]["breakdown"]["de"]["text"] == "So setzt sich Ihre Rechnung zusammen"
    over = body["cells"]["tagline"]["de"]["overflow"]
    assert len(over) == 1 and over[0]["scene"] == "intro" and over[0]["layer"] == 2 and 1.5 <= over[0]["t"] < 3.5
    assert over[0]["box"] == [140 / 1280, 430 / 720, 1000 / 1280, 70 / 720]
    assert not any(cell["overflow"] for key in body["keys"] for lang, cell in body["cells"][key].items()
                   if (key, lang) != ("tagline", "de"))


def test_the_schema_is_the_one_billcast_schema_prints(shared) -> None:
    response = shared.client.get("/studio/_schema.json")
    assert response.status_code == 200 and response.get_json() == json_schema("storyboard")
    assert response.get_json()["$defs"]["TextLayer"]["required"] == ["box", "kind", "text"]
    assert set(StoryboardModel.model_json_schema()["properties"]) == set(response.get_json()["properties"])


# --- storyboards as documents ----------------------------------------------------------------------------


def test_a_new_storyboard_from_the_blank_starter_is_valid_and_names_itself(st) -> None:
    response = st.post("/studio/_new", {"name": "winter_bill", "starter": "blank"})
    assert response.status_code == 201 and response.get_json()["url"] == "/studio/winter_bill"
    text = (st.boards / "winter_bill.yaml").read_text(encoding="utf-8")
    assert text.startswith("# A new storyboard.") and yaml.safe_load(text)["name"] == "winter_bill"
    assert billcast_check(st.boards / "winter_bill.yaml").returncode == 0
    assert st.client.get("/studio/winter_bill").status_code == 200
    assert len(st.client.get("/studio/winter_bill/history").get_json()["history"]) == 1


def test_a_new_storyboard_from_a_shipped_one_is_a_copy_with_its_comments(st) -> None:
    assert st.post("/studio/_new", {"name": "nov-bill", "starter": "bill_explainer"}).status_code == 201
    copy = (st.boards / "nov-bill.yaml").read_text(encoding="utf-8")
    shipped = (ROOT / "storyboards" / "bill_explainer.yaml").read_text(encoding="utf-8")
    assert copy == shipped.replace("name: bill_explainer", "name: nov-bill")


@pytest.mark.parametrize("body,status,words", [
    ({"name": "bill_explainer", "starter": "blank"}, 409, "already a storyboard"),
    ({"name": "../etc/passwd", "starter": "blank"}, 422, "a name is letters"),
    ({"name": "_new", "starter": "blank"}, 422, "a name is letters"),
    ({"name": "ok", "starter": "../../etc/passwd"}, 422, "choose a starter"),
    ({"name": "ok"}, 422, "choose a starter"),
    ({"name": ["x"], "starter": "blank"}, 422, "a name is letters"),
])
def test_a_new_storyboard_with_a_bad_name_or_starter_is_refused(shared, body, status, words) -> None:
    response = shared.post("/studio/_new", body)
    assert response.status_code == status and words in response.get_json()["error"]
    assert not (shared.boards / "ok.yaml").exists()


def test_duplicating_copies_the_live_storyboard_not_its_draft(st) -> None:
    st.save(st.live().replace("fps: 25", "fps: 0"))  # a draft
    assert st.post("/studio/bill_explainer/duplicate", {"to": "bill_copy"}).status_code == 201
    copy = (st.boards / "bill_copy.yaml").read_text(encoding="utf-8")
    assert "fps: 25" in copy and "name: bill_copy" in copy
    assert st.post("/studio/bill_explainer/duplicate", {"to": "bill_copy"}).status_code == 409


def test_renaming_moves_the_file_its_draft_and_its_history(st) -> None:
    st.save(st.live().replace(GREETING, 'greeting: "Salve {{ first_name }},"'))
    st.save(st.live().replace("fps: 25", "fps: 0"))  # a draft
    response = st.post("/studio/bill_explainer/rename", {"to": "bill_v2"})
    assert response.status_code == 200 and response.get_json()["url"] == "/studio/bill_v2"
    assert not (st.boards / "bill_explainer.yaml").exists() and (st.boards / "bill_v2.yaml").is_file()
    assert "name: bill_v2" in (st.boards / "bill_v2.yaml").read_text(encoding="utf-8")
    assert "name: bill_v2" in (st.boards / ".drafts" / "bill_v2.yaml").read_text(encoding="utf-8")
    assert len(st.client.get("/studio/bill_v2/history").get_json()["history"]) == 2  # the save, and the new name
    assert st.client.get("/studio/bill_explainer").status_code == 404
    assert st.post("/studio/bill_v2/rename", {"to": "firm_reminder"}).status_code == 409


def test_a_storyboard_a_campaign_renders_is_not_renamed(tmp_path) -> None:
    app = make_app(tmp_path)
    shutil.copy(ROOT / "examples" / "campaign.toml", tmp_path / "examples" / "campaign.toml")
    service = app.extensions["billcast"]
    settings = dataclasses.replace(service.settings, campaigns=(load_campaign(tmp_path / "examples" / "campaign.toml"),))
    app.extensions["billcast"] = Service(settings)
    st = Studio(app, tmp_path)
    response = st.post("/studio/firm_reminder/rename", {"to": "firm_v2"})
    assert response.status_code == 409 and response.get_json()["campaigns"] == ["demo-2026-11"]
    assert (st.boards / "firm_reminder.yaml").is_file()


def test_an_edit_keeps_working_on_a_storyboard_created_in_the_studio(st) -> None:
    st.post("/studio/_new", {"name": "fresh", "starter": "blank"})
    body = edit(st, {"op": "insert", "path": ["scenes", 0, "layers"], "index": 3,
                     "value": {"kind": "qr", "link": "pay", "box": [900, 200, 300, 300]}}, name="fresh").get_json()
    assert body["ok"], body["errors"]
    assert json.dumps(body["doc"]["scenes"][0]["layers"][3]["box"]) == "[900.0, 200.0, 300.0, 300.0]"


POSTS = ["/studio/bill_explainer/edit", "/studio/bill_explainer/layers", "/studio/bill_explainer/fields",
         "/studio/bill_explainer/translations", "/studio/bill_explainer/frame", "/studio/_new",
         "/studio/bill_explainer/duplicate", "/studio/bill_explainer/rename", "/studio/_assets/delete"]


@pytest.mark.parametrize("path", POSTS)
def test_every_new_post_needs_the_csrf_token_and_a_same_site_origin(shared, path) -> None:
    st = shared
    body = {"text": st.live(), "ops": [{"op": "set", "path": ["name"], "value": "x"}], "name": "csrf_probe",
            "starter": "blank", "to": "csrf_probe", "path": "images/mark.png"}
    assert st.client.post(path, json=body).status_code == 403
    assert st.client.post(path, json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert st.post(path, body, Origin="https://evil.example").status_code == 403
    assert not (st.boards / "csrf_probe.yaml").exists() and (st.boards / "bill_explainer.yaml").is_file()
