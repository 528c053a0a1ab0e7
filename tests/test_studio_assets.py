"""The studio's asset library through Flask's test client: uploads checked by their content (images by
Pillow within byte and pixel budgets, audio decoded by ffmpeg), the library, and deletions that would
break a storyboard refused."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from billcast.service.studio_assets import MAX_IMAGE_PIXELS

from conftest import ROOT
from test_studio import ADMIN, Studio, make_app, st  # noqa: F401 (the fixture)


def png(size=(240, 80), color=(242, 165, 65, 255), mode="RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGBA" else 0).save(buffer, "PNG")
    return buffer.getvalue()


def upload(st: Studio, data: bytes, filename: str, **headers):
    return st.client.post("/studio/_assets", data={"file": (io.BytesIO(data), filename)},
                          content_type="multipart/form-data", headers={"X-CSRF-Token": st.csrf, **headers})


def test_a_png_logo_is_stored_under_a_name_and_extension_taken_from_its_content(st) -> None:
    response = upload(st, png(), "My Logo (final).JPG")
    assert response.status_code == 201, response.get_json()
    asset = response.get_json()["asset"]
    assert asset["path"] == "images/my-logo-final.png" and (asset["width"], asset["height"]) == (240, 80)
    assert (st.root / "assets" / "images" / "my-logo-final.png").read_bytes() == png()
    again = upload(st, png(), "my logo final.png").get_json()["asset"]
    assert again["path"] == "images/my-logo-final-2.png"  # never over another file
    listed = st.client.get("/studio/_assets").get_json()
    assert listed["writable"] is True
    paths = {a["path"]: a for a in listed["assets"]}
    assert {"images/logo.png", "images/pattern.png", "audio/bed.m4a", "images/my-logo-final.png"} <= set(paths)
    assert paths["images/logo.png"]["users"] == ["bill_explainer", "firm_reminder", "soft_reminder", "soft_reminder_b"]
    served = st.client.get(paths["images/my-logo-final.png"]["url"])
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data == png()


def test_the_studios_assets_folder_starts_as_a_copy_of_the_packaged_assets(st) -> None:
    st.client.get("/studio/_assets")
    for name in ("fonts/NotoSans-Regular.ttf", "images/logo.png", "audio/bed.m4a"):
        assert (st.root / "assets" / name).read_bytes() == (ROOT / "assets" / name).read_bytes()


def test_a_placed_upload_makes_a_storyboard_valid_that_was_not(st) -> None:
    text = st.live().replace("src: images/logo.png\n        box: [340, 220", "src: images/brand.png\n        box: [340, 220")
    before = st.validate(text).get_json()
    assert [e["message"] for e in before["errors"]] == ["asset not found: assets/images/brand.png"]
    assert upload(st, png(), "brand.png").status_code == 201
    assert st.validate(text).get_json()["ok"]  # a check made before the upload is not reused


@pytest.mark.parametrize("data,filename,status,words", [
    (b"\x7fELF\x02\x01\x01" + bytes(4000), "logo.png", 415, "content was checked, not its name"),
    (b"MZ\x90\x00" + bytes(4000), "logo.png", 415, "content was checked"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.png", 415, "SVG"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "logo.svg", 415, "SVG"),
    (png()[:60], "cut.png", 415, "content was checked"),
    (b"", "empty.png", 422, "empty"),
    (b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00" + bytes(3000), "bed.m4a", 415, "cannot be decoded"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff" * 2000, "bed.mp3", 415, "cannot be decoded"),
])
def test_files_that_are_not_what_they_claim_are_refused(st, data, filename, status, words) -> None:
    response = upload(st, data, filename)
    assert response.status_code == status and words in response.get_json()["error"]
    for folder in ("images", "audio"):  # nothing kept, not even a temporary file
        assert sorted(p.name for p in (st.root / "assets" / folder).iterdir()) == \
            sorted(p.name for p in (ROOT / "assets" / folder).iterdir())


def test_a_decompression_bomb_is_refused_before_it_is_decoded(st, monkeypatch) -> None:
    bomb = png(size=(6000, 6000), mode="L")  # 36 megapixels of black: a few tens of KB
    assert len(bomb) < 200_000
    decoded: list[int] = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1) or real_load(self))
    response = upload(st, bomb, "bomb.png")
    assert response.status_code == 413 and "6000x6000 is too large" in response.get_json()["error"]
    assert decoded == [] and 6000 * 6000 > MAX_IMAGE_PIXELS


def test_a_header_that_claims_a_giant_image_is_refused(st) -> None:
    data = bytearray(png(size=(8, 8)))
    data[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    response = upload(st, bytes(data), "giant.png")
    assert response.status_code == 413 and "too" in response.get_json()["error"]


def test_an_upload_past_the_size_limit_is_refused_without_being_kept(st) -> None:
    response = upload(st, b"\x89PNG" + bytes(17 * 1024 * 1024), "huge.png")
    assert response.status_code == 413
    assert not [p for p in (st.root / "assets" / "images").iterdir() if "huge" in p.name or p.name.startswith(".")]


def test_an_audio_bed_is_decoded_whole_and_kept_with_its_length(st) -> None:
    data = (ROOT / "assets" / "audio" / "bed.m4a").read_bytes()
    response = upload(st, data, "Winter Bed.wav")
    assert response.status_code == 201, response.get_json()
    asset = response.get_json()["asset"]
    assert asset["path"] == "audio/winter-bed.m4a" and asset["kind"] == "audio" and 5 < asset["duration"] < 120
    served = st.client.get("/studio/_assets/file/audio/winter-bed.m4a")
    assert served.mimetype == "audio/mp4" and served.data == data


def test_uploads_need_the_admin_token_and_the_csrf_token(tmp_path, st) -> None:
    assert upload(st, png(), "a.png", **{"X-CSRF-Token": "forged"}).status_code == 403
    anonymous = make_app(tmp_path / "other").test_client()
    (tmp_path / "other").mkdir(exist_ok=True)
    response = anonymous.post("/studio/_assets", data={"file": (io.BytesIO(png()), "a.png")},
                              content_type="multipart/form-data")
    assert response.status_code == 401
    assert not (st.root / "assets" / "images" / "a.png").exists()


def test_without_a_studio_assets_folder_the_packaged_ones_are_listed_and_nothing_is_written(tmp_path) -> None:
    app = make_app(tmp_path)
    app.config.pop("BILLCAST_STUDIO_ASSETS")
    st = Studio(app, tmp_path)
    listed = st.client.get("/studio/_assets").get_json()
    assert listed["writable"] is False and any(a["path"] == "images/logo.png" for a in listed["assets"])
    refused = upload(st, png(), "a.png")
    assert refused.status_code == 409 and "BILLCAST_STUDIO_ASSETS" in refused.get_json()["error"]
    deleted = st.post("/studio/_assets/delete", {"path": "images/mark.png"})
    assert deleted.status_code == 409 and (ROOT / "assets" / "images" / "mark.png").is_file()
    page = st.client.get("/studio/bill_explainer").get_data(as_text=True)
    assert "set <code>BILLCAST_STUDIO_ASSETS</code> to upload" in page


def test_deleting_an_asset_a_storyboard_uses_is_refused_with_its_users(st) -> None:
    response = st.post("/studio/_assets/delete", {"path": "images/pattern.png"})
    assert response.status_code == 409
    body = response.get_json()
    assert "used by bill_explainer" in body["error"]
    assert {"storyboard": "bill_explainer", "line": 125} in body["users"]
    assert (st.root / "assets" / "images" / "pattern.png").is_file()


def test_a_draft_that_uses_an_asset_keeps_it_too(st) -> None:
    upload(st, png(), "promo.png")
    st.save(st.live().replace("src: images/logo.png", "src: images/promo.png").replace("fps: 25", "fps: 0"))
    response = st.post("/studio/_assets/delete", {"path": "images/promo.png"})
    assert response.status_code == 409 and response.get_json()["users"][0]["storyboard"] == "bill_explainer (draft)"


def test_an_unused_asset_is_deleted(st) -> None:
    upload(st, png(), "old.png")
    assert st.post("/studio/_assets/delete", {"path": "images/old.png"}).status_code == 200
    assert not (st.root / "assets" / "images" / "old.png").exists()


@pytest.mark.parametrize("path", ["../storyboards/bill_explainer.yaml", "images/../../storyboards/bill_explainer.yaml",
                                  "fonts/NotoSans-Regular.ttf", "images/", "/etc/passwd", "images/logo.png/..",
                                  "images/.hidden.png", "images/logo.exe"])
def test_paths_that_are_not_assets_are_not_served_or_deleted(st, path) -> None:
    assert st.client.get(f"/studio/_assets/file/{path}").status_code in (404, 308)  # 308: // is one /
    assert st.post("/studio/_assets/delete", {"path": path}).status_code in (404, 409)
    assert (st.boards / "bill_explainer.yaml").is_file() and (st.root / "assets" / "fonts" / "NotoSans-Regular.ttf").is_file()


def test_a_symlink_out_of_the_assets_folder_is_not_served(st, tmp_path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    st.client.get("/studio/_assets")
    (st.root / "assets" / "images" / "sneaky.png").symlink_to(secret)
    assert st.client.get("/studio/_assets/file/images/sneaky.png").status_code == 404
    assert "images/sneaky.png" not in {a["path"] for a in st.client.get("/studio/_assets").get_json()["assets"]}


def test_a_header_only_bearer_request_is_enough_to_list(tmp_path) -> None:
    client = make_app(tmp_path).test_client()
    assert client.get("/studio/_assets", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
