#!/usr/bin/env bash
# gate_dispatcher_vm.t.sh - the gate inside libxdp's dispatcher beside xdp-filter, for real (TAP).
#
# The kernel CI and the lab machines run refuses freplace (BPF_PROG_TYPE_EXT), so there the
# gate falls back to a plain attach and gate_netns.t.sh checks that fallback (docs/gate.md).
# This test boots Debian's stock kernel (linux-image-amd64, unpacked into build/vm/, never
# installed) in a QEMU VM with no network device (tests/lib/vm.sh), mounts this machine's
# root filesystem read-only inside it, and runs gate_netns.t.sh's start and coexistence
# checks there (EG_GATE_ONLY=coexistence), where libxdp's dispatcher runs: the gate started
# as root on a veth in a netns inside the VM, xdp-filter loaded on the same veth in both
# orders, both programs in one dispatcher with the gate at run priority 1, both programs'
# rules dropping what they should, `edgegatectl status --json` saying "dispatcher": true,
# nothing of the gate left in the dispatcher after stop. The inner TAP is passed through
# renumbered, after the checks on the VM itself.
# EG_VM_TIMEOUT (seconds, default 300) bounds the VM; EG_VM_ACCEL=kvm|tcg as in vm.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DAEMON=${EG_DAEMON:-$ROOT/build/edgegated}
CTL=${EG_CTL:-$ROOT/build/edgegatectl}

. tests/lib/tap.sh
. tests/lib/vm.sh

[ "$(id -u)" = 0 ] || skip_all "needs root (the VM's 9p export of /, as root inside)"
for t in qemu-system-x86_64 busybox cpio apt-get dpkg python3 ip bpftool xdp-filter xdp-loader; do
	command -v $t >/dev/null || skip_all "needs $t (tools/deps.sh)"
done
[ -x "$DAEMON" ] && [ -x "$CTL" ] || skip_all "build/edgegated and build/edgegatectl not built"
# the VM sees this machine's / except what it mounts afresh (/tmp, /var/tmp, /run): a
# checkout there (CI clones anywhere) is shared on its own, and the binaries must be in it
case "$ROOT" in /tmp/* | /run/* | /var/tmp/*) export VM_SHARE=$ROOT ;; esac
for f in "$ROOT" "$DAEMON" "$CTL"; do
	case "$f" in
	"$ROOT" | "$ROOT"/*) ;;
	/tmp/* | /run/* | /var/tmp/* | /dev/* | /proc/* | /sys/*) skip_all "$f is on a filesystem the VM does not share" ;;
	esac
done

t0=$(date +%s)
check "stock kernel and initramfs ready in build/vm/" vm_prepare
[ "$fails" = 0 ] || { echo "1..$n"; exit 1; }

vm_run "${EG_VM_TIMEOUT:-300}" "$ROOT" "$ROOT/tests/integration/gate_netns.t.sh" \
	EG_ROOT="$ROOT" EG_DAEMON="$DAEMON" EG_CTL="$CTL" EG_GATE_ONLY=coexistence EG_GATE_DISPATCHER=yes EG_GATE_USER=nobody \
	CI="${CI:-}"
trap 'rm -f "$VM_OUT" "$VM_CONSOLE" "$VM_CONSOLE.qemu"' EXIT
echo "# vm: $VM_ACCEL, booted in ${VM_BOOT_SECONDS:-?} s (guest uptime when the test started), whole run ${VM_SECONDS} s"
booted=no
[ -n "$VM_BOOT_SECONDS" ] && booted=yes
check "the VM booted Debian's kernel and started the inner test" [ $booted = yes ]
if [ $booted = no ] || [ -z "$VM_STATUS" ]; then
	echo "# qemu exit status $VM_QEMU_RC (124: the ${EG_VM_TIMEOUT:-300} s timeout); console tail:"
	tail -n 25 "$VM_CONSOLE" "$VM_CONSOLE.qemu" 2>/dev/null | sed 's/^/#   /'
fi

# the inner TAP, renumbered after ours; its own plan is checked against what it printed
inner_n=0 inner_fail=0 inner_plan=
while IFS= read -r line; do
	line=${line%$'\r'}
	case "$line" in
	EG-VM-*) ;;
	"ok "*|"not ok "*)
		inner_n=$((inner_n + 1))
		desc=${line#*ok [0-9]* - }
		case "$line" in
		"ok "*) ok "vm: $desc" ;;
		*) inner_fail=$((inner_fail + 1)); nok "vm: $desc" ;;
		esac ;;
	1..*) inner_plan=${line#1..} ;;
	*) echo "#   $line" ;;
	esac
done <"$VM_OUT"
check "the inner test ran to its end (plan 1..${inner_plan:-none}, $inner_n checks)" \
	[ -n "$inner_plan" ] && [ "$inner_plan" = "$inner_n" ] && [ "$inner_n" -gt 0 ]
check "the inner test exited 0 inside the VM (status ${VM_STATUS:-none}, $inner_fail failed)" [ "${VM_STATUS:-x}" = 0 ]
check "the VM powered itself off (qemu status $VM_QEMU_RC; the whole test took $(( $(date +%s) - t0 )) s, the VM's limit ${EG_VM_TIMEOUT:-300} s)" \
	[ "$VM_QEMU_RC" = 0 ]
echo "1..$n"
[ "$fails" = 0 ]
