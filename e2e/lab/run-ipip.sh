#!/usr/bin/env bash
# run-ipip.sh: the IPIP kernel tests, in the qemu lab. This host's kernel has no ipip module,
# so one throwaway VM (Debian's stock kernel, the host's files read-only, see kvm-run.sh) is
# booted once, and inside it, with LAB_GUEST=1 (which makes the IPIP tests required rather
# than skipped), one `node --test` runs:
#   packages/ipip/dist/test/kernel.test.js            its tunl0 case only (the VXLAN and MTU
#                                                     cases run on the host with `npm test`)
#   packages/felix-lite/dist/test/ipip-datapath.test.js   the IPIP data path, Always and CrossSubnet
# Then it prints a summary and exits 0 only if every selected test passed and none was
# skipped, and each selection matched a passing test.
#
#   bash e2e/lab/run-ipip.sh          (npm run test:lab; root, as the kernel tests need)
#
# Environment: LAB_TIMEOUT (VM wall-clock limit, default 600 s), LAB_NO_BUILD=1 (skip the
# tsc build), and kvm-run.sh's own (LAB_CACHE, LAB_KERNEL_PKG, LAB_ACCEL, LAB_CPUS, ...).
# Under software emulation (TCG: no usable KVM on this project's machines) everything in the
# guest is 5 - 15x slower: boot about 4 s, the tests about 35 s.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
lab=e2e/lab
say() { echo "run-ipip: $*" >&2; }

# file, then the test-name pattern that selects its cases (a JS regex, also matched by awk)
selection=(
  packages/ipip/dist/test/kernel.test.js '^configures_tunl0_for_ipip_'
  packages/felix-lite/dist/test/ipip-datapath.test.js '^IPIP data path '
)
files=() patterns=()
for ((i = 0; i < ${#selection[@]}; i += 2)); do
  files+=("${selection[i]}") patterns+=("${selection[i + 1]}")
done

(( EUID == 0 )) || { say "needs root (the guest runs as root, but kvm-run.sh installs and the tests make namespaces)"; exit 1; }
# the guest runs the host's binaries: the tests' tools must be installed here
for tool in ip ping node; do
  command -v "$tool" >/dev/null || { say "missing on the host: $tool (iproute2, iputils-ping, node)"; exit 1; }
done

t_start=$(date +%s.%N)
if [[ ${LAB_NO_BUILD:-0} != 1 ]]; then
  node_modules/.bin/tsc -b packages/ipip packages/felix-lite
fi
for f in "${files[@]}"; do
  [[ -f $f ]] || { say "$f not found: build first (npm run build)"; exit 1; }
done

results=$(mktemp -d "${TMPDIR:-/tmp}/lab-ipip.XXXXXX")
trap 'rm -rf "$results"' EXIT
args=(--test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout
  --test-reporter=tap --test-reporter-destination="$results/tap")
for p in "${patterns[@]}"; do args+=(--test-name-pattern="$p"); done

say "booting the lab guest for ${files[*]}"
set +e
LAB_TIMES="$results/times" bash "$lab/kvm-run.sh" --modules ipip --timeout "${LAB_TIMEOUT:-600}" \
  --rw "$results" -- node "${args[@]}" "${files[@]}"
rc=$?
set -e
t_end=$(date +%s.%N)

# The TAP report: leaf results (a suite's own line follows its children's "1..N" plan);
# Node 20 reports the cases the patterns leave out as skipped "test name does not match pattern".
summary=$(awk -v pats="$(printf '%s\n' "${patterns[@]}")" '
  BEGIN { np = split(pats, pat, "\n"); if (pat[np] == "") np-- }
  /^ *---$/ { yaml = 1; next }
  yaml { if ($0 ~ /^ *\.\.\.$/) yaml = 0; next }
  /^ *(not )?ok [0-9]+ - / {
    line = $0; sub(/^ */, "", line)
    bad = line ~ /^not ok/
    sub(/^(not )?ok [0-9]+ - /, "", line)
    name = line; directive = ""
    if (match(line, / # (SKIP|TODO)( |$)/)) { name = substr(line, 1, RSTART - 1); directive = substr(line, RSTART + 3) }
    suite = last ~ /^ *1\.\.[0-9]+$/
    if (!bad && directive == "") for (i = 1; i <= np; i++) if (name ~ pat[i]) hit[i]++
    if (directive ~ /^SKIP test name does not match pattern/) { left++; last = $0; next }
    if (suite) { last = $0; next }
    if (bad) { fail++; printf "  FAIL  %s\n", name }
    else if (directive ~ /^SKIP/) { skip++; printf "  SKIP  %s (%s)\n", name, substr(directive, 6) }
    else if (directive ~ /^TODO/) { todo++; printf "  TODO  %s\n", name }
    else { pass++; printf "  ok    %s\n", name }
    last = $0; next
  }
  /^ *#/ { next }
  { last = $0 }
  END {
    for (i = 1; i <= np; i++) if (!hit[i]) { missing++; printf "  NONE  no passing test matched /%s/\n", pat[i] }
    printf "%d passed, %d failed, %d skipped, %d todo, %d not selected, %d selections unmatched\n",
      pass, fail, skip, todo, left, missing
    exit !(pass > 0 && fail + skip + todo + missing == 0)
  }' "$results/tap" 2>/dev/null) && ok=1 || ok=0
[[ -s $results/tap ]] || { ok=0; summary="  no TAP report from the guest (it never ran the tests)"; }

echo
echo "== IPIP lab: ${files[*]}"
echo "$summary"
[[ -r $results/times ]] && echo "== guest: $(cat "$results/times")"
awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "== total (build, boot, tests) %.1f s\n", b - a }'
case $rc in
  0) ;;
  124) echo "== the VM hit its ${LAB_TIMEOUT:-600} s limit" ;;
  125) echo "== the lab itself failed (see kvm-run.sh's message above)" ;;
  *) echo "== node --test exited with $rc" ;;
esac
if (( rc == 0 && ok )); then echo "== IPIP lab: PASS"; exit 0; fi
echo "== IPIP lab: FAIL"
exit $(( rc != 0 ? rc : 1 ))
