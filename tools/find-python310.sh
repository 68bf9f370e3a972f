#!/usr/bin/env bash
# Print the path of a working Python 3.10 interpreter (Lava needs >=3.10,<3.11).
# Order: python3.10 / python3 / python on PATH, then pyenv's installed 3.10.x.
# A pyenv shim that only prints "command not found" fails the version probe and is skipped.
set -u
is310() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }
for name in python3.10 python3 python; do
    p=$(command -v "$name" 2>/dev/null) || continue
    if is310 "$p"; then
        # resolve a shim to the real interpreter so the venv does not depend on pyenv's state
        "$p" -c 'import sys; print(sys.executable)'; exit 0
    fi
done
roots=()
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root 2>/dev/null)")
roots+=("${PYENV_ROOT:-}" "$HOME/.pyenv")
for root in "${roots[@]}"; do
    [ -n "$root" ] || continue
    for p in $(ls -d "$root"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -rV); do
        if is310 "$p"; then echo "$p"; exit 0; fi
    done
done
echo "spikeship: no Python 3.10 found (Lava needs >=3.10,<3.11); install one, e.g. 'pyenv install 3.10', and retry" >&2
exit 2
