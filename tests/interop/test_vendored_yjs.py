"""static/kasagi/vendor/yjs.mjs is what clients/js-yjs/build.mjs builds from the pinned
yjs (package-lock.json), byte for byte, and it is a working yjs."""

from __future__ import annotations

import subprocess

from tests.interop.test_yjs import PACKAGE, need_yjs


def test_the_vendored_bundle_is_up_to_date():
    node = need_yjs()
    checked = subprocess.run([node, str(PACKAGE / "build.mjs"), "--check"],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_the_vendored_bundle_speaks_yjs_v1():
    node = need_yjs()
    bundle = PACKAGE.parents[1] / "static" / "kasagi" / "vendor" / "yjs.mjs"
    script = (
        f"const Y = await import({str(bundle)!r});"
        "const a = new Y.Doc(); a.getText('note').insert(0, 'vendored');"
        "const b = new Y.Doc(); Y.applyUpdate(b, Y.encodeStateAsUpdate(a));"
        "console.log(b.getText('note').toString());"
    )
    ran = subprocess.run([node, "--input-type=module", "-e", script],
                         capture_output=True, text=True, timeout=60)
    assert ran.stdout.strip() == "vendored", ran.stderr
