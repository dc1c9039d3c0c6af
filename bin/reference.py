"""
docs/reference.md from the modules' own docstrings (make reference): one
source for what every execution function, state and beacon does.

    bin/reference.py           # write docs/reference.md
    bin/reference.py --check   # exit 1 when docs/reference.md is not what the docstrings give

Each module's docstring becomes its section's text (reStructuredText turned
into Markdown: literals, definition lists, headings, code blocks); each public
function a row: its name, the first command of its CLI Example (or the first
YAML block of a state) and the first paragraph of its docstring.
"""

import ast
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "docs", "reference.md")

# (heading, file, kind): kind "functions" for execution modules, "states", or "beacon".
SECTIONS = [
    ("Execution module: `pgfailover.*`", "_modules/pgfailover.py", "functions"),
    ("State module: `pgfailover.*`", "_states/pgfailover.py", "states"),
    ("Backups: `pgfailover_backup.*`", "_modules/pgfailover_backup.py", "functions"),
    ("Backup states: `pgfailover_backup.*`", "_states/pgfailover_backup.py", "states"),
    ("SSL changes: `pgfailover_ssl.*`", "_modules/pgfailover_ssl.py", "functions"),
    ("Certificate checks: `pgfailover_tls.*`", "_modules/pgfailover_tls.py", "functions"),
    ("Pillar validation: `pgfailover_pillar.*`", "_modules/pgfailover_pillar.py", "functions"),
    ("Beacon: `pgfailover`", "_beacons/pgfailover.py", "beacon"),
]


def public_functions(tree):
    """The module's public functions in file order."""
    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


def paragraphs(text):
    return [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def inline(text):
    """reStructuredText inline markup as Markdown, on one line."""
    text = " ".join(line.strip() for line in text.splitlines())
    text = re.sub(r":py:func:`([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def summary(doc):
    """The first paragraph of a docstring, on one line, pipes escaped for a table."""
    first = paragraphs(doc)[0] if doc else ""
    return inline(first).replace("|", "\\|")


def code_blocks(doc, language):
    """The bodies of the docstring's ``.. code-block:: LANGUAGE`` blocks."""
    blocks, lines = [], (doc or "").splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f".. code-block:: {language}":
            body = []
            for following in lines[i + 1 :]:
                if following.strip() and not following.startswith((" ", "\t")):
                    break
                body.append(following)
            blocks.append(_dedent(body))
    return blocks


def _dedent(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(line[indent:] for line in lines)


def first_command(doc):
    """The first CLI example, continuation lines joined."""
    blocks = code_blocks(doc, "bash")
    if not blocks:
        return ""
    command = []
    for line in blocks[0].splitlines():
        command.append(line.strip().rstrip("\\").strip())
        if not line.rstrip().endswith("\\"):
            break
    return " ".join(command).replace("|", "\\|")


def markdown(doc):
    """A module docstring as Markdown: headings, definition lists, code blocks, joined paragraphs."""
    out, paragraph, lines, i = [], [], doc.splitlines(), 0

    def flush():
        if paragraph:
            out.extend([inline(" ".join(paragraph)), ""])
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip().startswith(".. code-block::"):
            flush()
            language = line.split("::", 1)[1].strip()
            body = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                body.append(lines[i])
                i += 1
            out.extend([f"```{language}", _dedent(body), "```", ""])
        elif line.strip() and nxt.strip() and set(nxt.strip()) == {"-"}:
            flush()
            out.extend([f"### {line.strip()}", ""])
            i += 2
        elif line.strip() and not line.startswith(" ") and nxt.startswith("    ") and not paragraph:
            term, body = line.strip(), []
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                body.append(lines[i].strip())
                i += 1
            out.append(f"- {inline(term)}: {inline(' '.join(body))}")
            if i < len(lines) and not lines[i].strip():
                out.append("")
        elif not line.strip():
            flush()
            i += 1
        else:
            paragraph.append(line.strip())
            i += 1
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def section(heading, path, kind):
    with open(os.path.join(REPO, path)) as f:
        tree = ast.parse(f.read())
    lines = [f"## {heading}", "", f"From `{path}`.", "", markdown(ast.get_docstring(tree) or ""), ""]
    functions = (
        public_functions(tree) if kind != "beacon" else []
    )  # a beacon's validate/beacon are Salt's hooks
    if kind == "functions":
        lines += ["| function | example | what |", "|---|---|---|"]
        for node in functions:
            doc = ast.get_docstring(node)
            lines.append(f"| `{node.name}` | `{first_command(doc)}` | {summary(doc)} |")
    elif kind == "states":
        lines += ["| state | what |", "|---|---|"]
        for node in functions:
            lines.append(f"| `{node.name}` | {summary(ast.get_docstring(node))} |")
    return [*lines, ""]


def missing_examples():
    """Public execution functions without a CLI example, and states without a YAML example."""
    missing = []
    for _, path, kind in SECTIONS:
        with open(os.path.join(REPO, path)) as f:
            tree = ast.parse(f.read())
        for node in public_functions(tree) if kind != "beacon" else []:
            doc = ast.get_docstring(node) or ""
            if kind == "functions" and not code_blocks(doc, "bash"):
                missing.append(f"{path}: {node.name} has no CLI Example")
            if kind == "states" and not code_blocks(doc, "yaml"):
                missing.append(f"{path}: {node.name} has no YAML example")
    return missing


def reference():
    lines = [
        "# Reference: execution modules, states and the beacon",
        "",
        "Generated from the modules' docstrings by `bin/reference.py` (`make reference`); edit the "
        "docstrings, not this page. `salt-call sys.doc pgfailover` shows the same text on a minion.",
        "",
    ]
    for heading, path, kind in SECTIONS:
        lines += section(heading, path, kind)
    return "\n".join(lines).rstrip() + "\n"


def main(argv):
    text = reference()
    if "--check" in argv:
        with open(OUT) as f:
            current = f.read()
        if current != text:
            print(f"{OUT} is not what the docstrings give: run make reference")
            return 1
        return 0
    with open(OUT, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
