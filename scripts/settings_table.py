"""Print (or, with --write, update in README.md) the table of settings."""

import dataclasses
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from server.settings import Settings  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
MARK = re.compile(r"(<!-- settings-table:start -->\n).*?(<!-- settings-table:end -->)", re.S)


def table() -> str:
    source = Path(sys.modules[Settings.__module__].__file__).read_text().splitlines()
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        comment = ""
        for line in source:
            if re.match(rf"\s+{f.name}:", line) and "#" in line:
                comment = line.split("#", 1)[1].strip()
        shown = (
            json.dumps(default)
            if not isinstance(default, str)
            else (f"`{default}`" if default else "(empty)")
        )
        if not isinstance(default, str):
            shown = f"`{shown}`"
        comment = comment.replace("|", "\\|")
        rows.append(f"| `GENOMEPORT_{f.name.upper()}` | {shown} | {comment} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if "--write" in sys.argv:
        text = README.read_text()
        README.write_text(MARK.sub(lambda m: m.group(1) + table() + m.group(2), text))
    else:
        print(table(), end="")
