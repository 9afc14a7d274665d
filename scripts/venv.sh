# Sourced by scripts/test and scripts/demo (from the repository root):
# ensure_venv SPEC creates .venv if needed and installs the project as SPEC
# (e.g. '.[test]'), quietly.

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=...)" >&2
    return 1
}

ensure_venv() {
    local spec=$1 python
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pip' 2>/dev/null; then
        python=$(find_python)
        echo "creating .venv with $python" >&2
        if ! "$python" -m venv --clear .venv; then
            # Debian's python3 ships venv without ensurepip: get it when we can.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                apt-get update -qq
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
                "$python" -m venv --clear .venv
            else
                echo "error: '$python -m venv' failed; install the venv module" >&2
                return 1
            fi
        fi
    fi
    # The project is installed editable: a change of the code needs no reinstall, only a
    # change of what is installed (pyproject.toml) or of what was asked for (SPEC; '.'
    # is part of any '.[extra]').
    local want stamp
    want=$(cksum < pyproject.toml)
    for stamp in ".venv/.installed $spec" ".venv/.installed .[test]"; do
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
            && { [ "$stamp" = ".venv/.installed $spec" ] || [ "$spec" = . ]; } \
            && .venv/bin/python -c 'import dispatch' 2>/dev/null; then
            write_bytecode
            return 0
        fi
    done
    echo "installing dicom-dispatch ($spec) into .venv (a minute on a first run)" >&2
    .venv/bin/python -m pip install --quiet -e "$spec"
    echo "$want" > ".venv/.installed $spec"
    write_bytecode
}

# The bytecode of the checkout's packages, as installing from a wheel writes it: every
# command then starts without compiling them (only changed files are compiled again).
write_bytecode() {
    .venv/bin/python -m compileall -q dispatch workers >/dev/null || true
}
