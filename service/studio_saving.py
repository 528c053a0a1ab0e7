"""The studio's changes: visual edits applied to the text, saves (with drafts, history and the
"someone else saved" check), and storyboards as documents: new from a starter, duplicated, renamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, abort, url_for

from billcast.renderer import packaged

from .context import service
from .studio_files import NAME_RE, Conflict, StoryboardFolder, text_digest
from .studio_web import Ask, BadAsk, asked, body, checked_text, json_response, live, route, storyboards, studio, worked
from .studio_yaml import EditError, parse_ops

BLANK = Path(__file__).parent / "templates" / "studio" / "blank.yaml"


@route("/<name>/edit", methods=("POST",))
@asked
def edit(name: str, question: Ask) -> Response:
    """Apply structured edits (``ops``) to the editor's text, keeping its comments and formatting;
    the new text with its check. Nothing is written: saving is the editor's to do."""
    try:
        text = studio().editor.edit(question.text, parse_ops(body().get("ops")))
    except EditError as exc:
        return json_response({"error": str(exc)}, 400)
    try:
        text = checked_text(text)
    except BadAsk as exc:
        return exc.response
    edited = Ask(text=text, customer=question.customer, language=question.language)
    meta, _ = worked(name, edited, "check", problem_status=200)
    return json_response(dict(meta["json"], text=text), meta["status"])


@route("/<name>/save", methods=("POST",))
@asked
def save(name: str, question: Ask) -> Response:
    """A valid text replaces the live file (history kept); an invalid one is kept as the draft, the live one
    untouched; 409 when someone else saved since the editor's ``base``."""
    folder = storyboards()
    found = worked(name, question, "check", problem_status=200)[0]["json"]
    if not found["ok"]:
        saved_at = folder.save_draft(name, question.text)
        return json_response(dict(found, draft={"saved_at": saved_at.isoformat()}), 422)
    given = body()
    base = None if given.get("force") else given.get("base") if isinstance(given.get("base"), str) else None
    try:
        saved = folder.save(name, question.text, base=base)
    except Conflict as exc:
        return json_response({"ok": False, "conflict": True, "error": str(exc), "live": exc.digest}, 409)
    return json_response(dict(found, saved={"changed": saved.changed, "saved_at": saved.time.isoformat(),
                                                    "base": saved.digest},
                              history=[entry_json(e) for e in folder.history(name)]))


@route("/<name>/draft/discard", methods=("POST",))
def discard(name: str) -> Response:
    live(name)
    folder = storyboards()
    folder.discard_draft(name)
    text = folder.read(name)
    return json_response({"ok": True, "text": text, "base": text_digest(text)})


def entry_json(entry: Any) -> dict[str, Any]:
    return {"id": entry.id, "time": entry.time.isoformat(), "added": entry.added, "removed": entry.removed}


@route("/<name>/history")
def history(name: str) -> Response:
    live(name)
    return json_response({"history": [entry_json(e) for e in storyboards().history(name)]})


@route("/<name>/history/<entry>")
def history_entry(name: str, entry: str) -> Response:
    live(name)
    folder = storyboards()
    diff, text = folder.diff(name, entry), folder.version(name, entry)
    if diff is None or text is None:
        abort(404)
    return json_response({"id": entry, "diff": diff, "text": text})


# --- storyboards as documents ---------------------------------------------------------------------------


def starters() -> dict[str, str]:
    """What a new storyboard can start from: a minimal one, or a copy of each shipped storyboard."""
    shipped = packaged("storyboards")
    return {"blank": "A blank storyboard: one scene, a headline, the logo",
            **{p.stem: f"A copy of {p.stem}" for p in sorted(shipped.glob("*.yaml"))}}


def _starter_text(starter: str) -> str | None:
    if starter == "blank":
        return BLANK.read_text(encoding="utf-8")
    path = packaged("storyboards") / f"{starter}.yaml"
    return path.read_text(encoding="utf-8") if starter in starters() and path.is_file() else None


def _new_name(raw: Any) -> str | Response:
    """A free storyboard name from the request, or the response that says why it is not one."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not NAME_RE.fullmatch(name):
        return json_response({"error": "a name is letters, digits, _ and - (at most 64, starting with a letter "
                                       "or digit)", "field": "name"}, 422)
    if storyboards().path(name) is not None or (storyboards().root / f"{name}.yaml").exists():
        return json_response({"error": f"there is already a storyboard called {name}", "field": "name"}, 409)
    return name


def _create(name: str, text: str) -> Response:
    """Write a new storyboard whose ``name:`` is its file's name; 201 with its editor's URL."""
    try:
        text = studio().editor.edit(text, [{"op": "set", "path": ("name",), "value": name}])
    except EditError as exc:
        return json_response({"error": f"the storyboard cannot be copied: {exc}"}, 422)
    try:
        storyboards().create(name, text)
    except FileExistsError:
        return json_response({"error": f"there is already a storyboard called {name}", "field": "name"}, 409)
    return json_response({"ok": True, "name": name, "url": url_for("studio.editor", name=name)}, 201)


@route("/_new", methods=("POST",))
def new() -> Response:
    """A new storyboard from a starter: ``{name, starter}``."""
    given = body()
    name = _new_name(given.get("name"))
    if isinstance(name, Response):
        return name
    text = _starter_text(given.get("starter") if isinstance(given.get("starter"), str) else "")
    if text is None:
        return json_response({"error": "choose a starter", "field": "starter"}, 422)
    return _create(name, text)


@route("/<name>/duplicate", methods=("POST",))
def duplicate(name: str) -> Response:
    """A copy of the live storyboard (not of a draft) under a new name: ``{to}``."""
    live(name)
    target = _new_name(body().get("to"))
    if isinstance(target, Response):
        return target
    return _create(target, storyboards().read(name))


@route("/<name>/rename", methods=("POST",))
def rename(name: str) -> Response:
    """Rename a storyboard (its draft and history with it): ``{to}``; refused while a campaign names it."""
    path = live(name)
    target = _new_name(body().get("to"))
    if isinstance(target, Response):
        return target
    users = [c.id for c in service().campaigns if path.resolve() in {p.resolve() for p in c.storyboards}]
    if users:
        return json_response({"error": f"campaign {', '.join(users)} renders this storyboard by its file name: "
                                       "change the campaign first", "campaigns": users}, 409)
    folder = storyboards()
    try:
        folder.rename(name, target)
    except FileExistsError:
        return json_response({"error": f"there is already a storyboard called {target}", "field": "name"}, 409)
    _rename_inside(folder, name, target)
    return json_response({"ok": True, "name": target, "url": url_for("studio.editor", name=target)})


def _rename_inside(folder: StoryboardFolder, old: str, new: str) -> None:
    """A renamed storyboard whose ``name:`` was its file's name takes the new one, in its live text (a save,
    kept in its history) and in its draft; a text that cannot be edited keeps the old name."""
    for text, write in ((folder.read(new), lambda t: folder.save(new, t, keep_draft=True)),
                        ((folder.draft(new) or ("",))[0], lambda t: folder.save_draft(new, t))):
        if _named(text) != old:
            continue
        try:
            write(studio().editor.edit(text, [{"op": "set", "path": ("name",), "value": new}]))
        except EditError:
            pass


def _named(text: str) -> str | None:
    """The ``name:`` a storyboard's text gives itself (a top-level line), if any."""
    for line in text.splitlines():
        if line.startswith("name:"):
            return line[5:].split("#", 1)[0].strip().strip("\"'") or None
    return None
