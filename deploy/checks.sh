# shellcheck shell=bash
# What the proofs (deploy/arm/prove.sh, deploy/central/prove-role.sh) share: the Debian packages they need on the
# host, and what they print (a heading per step and one PASS/FAIL line per check, also kept in $RUN/results.txt).
# Sourced; the sourcing script sets RUN.
# shellcheck disable=SC2034  # PASSED and FAILED are read by the proofs

say() { printf '\n\033[1m== %s  (%s UTC)\033[0m\n' "$*" "$(date -u +%T)"; }

FAILED=0 PASSED=0
# check NAME COMMAND...: run it, print PASS/FAIL with the last line it printed (on FAIL, its last 25 lines too).
check() {
    local name="$1" out status=0 last
    shift
    out="$("$@" 2>&1)" || status=$?
    last="$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1 || true)"
    if [[ $status -eq 0 ]]; then
        PASSED=$((PASSED + 1))
        printf '%s \033[32mPASS\033[0m  %-44s %s\n' "$(date -u +%T)" "$name" "$last" | tee -a "$RUN/results.txt"
    else
        FAILED=$((FAILED + 1))
        printf '%s \033[31mFAIL\033[0m  %-44s %s\n' "$(date -u +%T)" "$name" "$last" | tee -a "$RUN/results.txt"
        printf '%s\n' "$out" | tail -n 25 | sed 's/^/      /'
    fi
}

# host_packages PACKAGE...: install with apt-get the ones this host does not have yet.
host_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
