#!/usr/bin/env python3
"""Non-test lines of cache-runtime/src and cache-macros/src at a revision: blank lines, #[cfg(test)]
mod blocks and fuzz.rs left out; comment lines counted apart from code.
Usage: scripts/lines.py [REV]   (default HEAD; run from the repository)"""
import re, subprocess, sys

def strip_tests(text):
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)

def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout

rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
for crate in ["cache-runtime/src", "cache-macros/src"]:
    total = code = 0
    for path in git("ls-tree", "-r", "--name-only", rev, crate).split():
        if not path.endswith(".rs") or path.endswith("fuzz.rs"):
            continue
        lines = [l for l in strip_tests(git("show", f"{rev}:{path}")).split("\n") if l.strip()]
        total += len(lines)
        code += sum(1 for l in lines if not l.strip().startswith("//"))
    print(f"{rev[:12]:12} {crate:18} {total:6} lines, {code:6} of them code")
