#!/usr/bin/env bash
# The product as a new user gets it: the wheel and sdist built, the wheel installed into a fresh virtual
# environment outside the checkout, and used from an empty folder: --version, check on the packaged
# storyboards, and the demo, whose pages must be published. `make test` runs it; exits non-zero on any failure.
set -euo pipefail
python=$(cd "$(dirname "${1:-.venv/bin/python}")" && pwd)/$(basename "${1:-.venv/bin/python}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/billcast-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
say() { printf 'wheel check: %s\n' "$*"; }

# The sdist is built first and the wheel from it, so a file missing from the sdist fails here too.
if ! "$python" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log"; exit 1
fi
wheel=$(ls "$work"/dist/billcast-*.whl)
sdist=$(ls "$work"/dist/billcast-*.tar.gz)
say "built $(basename "$wheel") and $(basename "$sdist")"

# One top-level import package, with its data.
"$python" - "$wheel" "$root" <<'PY'
import sys, zipfile
from pathlib import Path
names = zipfile.ZipFile(sys.argv[1]).namelist()
root = Path(sys.argv[2])
layers = {"billcast": "billcast", "renderer": "billcast/renderer", "microsite": "billcast/microsite",
          "jobs": "billcast/jobs", "service": "billcast/service"}
missing = [f"{target}/{path.relative_to(root / folder)}" for folder, target in layers.items()
           for path in (root / folder).rglob("*.py")
           if f"{target}/{path.relative_to(root / folder)}" not in names]
assert not missing, f"modules missing from the wheel (add their packages to pyproject.toml): {missing}"
top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
assert top == {"billcast"}, f"top-level entries besides billcast: {sorted(top)}"
for needed in ("billcast/assets/fonts/NotoSans-Regular.ttf", "billcast/storyboards/bill_explainer.yaml",
               "billcast/examples/customers.jsonl", "billcast/examples/campaign.toml",
               "billcast/microsite/templates/page.html", "billcast/service/templates/studio/editor.html",
               "billcast/service/static/studio/code.js", "billcast/service/static/studio/THIRD_PARTY_LICENSES.txt",
               "billcast/service/templates/studio/blank.yaml"):
    assert needed in names, f"{needed} is not in the wheel"
print(f"wheel check: {len(names)} files, one top-level package")
PY

"$python" -m venv "$work/venv"
if ! "$work/venv/bin/python" -m pip install --quiet "$wheel" >"$work/pip.log" 2>&1; then
  tail -30 "$work/pip.log"; exit 1
fi
billcast="$work/venv/bin/billcast"
mkdir "$work/empty"
cd "$work/empty"
env -u BILLCAST_LINK_SECRET -u BILLCAST_ASSETS_DIR "$billcast" --version
boards=$("$work/venv/bin/python" -c 'from billcast.renderer import packaged; print(packaged("storyboards"))')
case "$boards" in "$root"*) echo "the installed package reads storyboards from the checkout: $boards"; exit 1;; esac
"$billcast" check "$boards"/*.yaml
env -u BILLCAST_LINK_SECRET "$billcast" demo --out "$work/demo" --workers 2 >"$work/demo.log" 2>&1 \
  || { tail -30 "$work/demo.log"; exit 1; }
pages=$(find "$work/demo/store/r" -name index.html | wc -l)
[ "$pages" -ge 10 ] || { echo "the demo published $pages pages"; tail -30 "$work/demo.log"; exit 1; }
grep -q "billcast serve $work/demo/campaign.toml" "$work/demo.log"
say "installed outside the checkout: version, check and demo ($pages pages published) work"
