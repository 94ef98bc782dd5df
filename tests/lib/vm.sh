# vm.sh - runs a command of this tree inside a QEMU VM on Debian's stock kernel (source it).
#
#   vm_prepare           kernel + initramfs in build/vm/ (downloaded/built only when missing)
#   vm_run T CWD CMD [NAME=VALUE...]
#                        boots the VM with a hard timeout of T seconds; inside, the host's root
#                        filesystem is mounted read-only over 9p and CMD runs as root in CWD
#                        (fresh tmpfs /tmp and /run, its own bpffs). CMD's output lands in
#                        $VM_OUT, the kernel's in $VM_CONSOLE; VM_STATUS is CMD's exit
#                        status (empty when the VM never said: no boot, hang, panic),
#                        VM_SECONDS the wall time of the run, VM_BOOT_SECONDS the guest's uptime
#                        when CMD started. In $VM_OUT, CMD's output sits between the lines
#                        "EG-VM-BOOTED <uptime>" and "EG-VM-EXIT <status>".
#
# The kernel is the package linux-image-amd64 depends on, unpacked with dpkg -x into
# build/vm/ (never installed: the host's /boot and modules are not touched). It boots as an
# uncompressed ELF through QEMU's PVH entry, which skips the bzImage decompressor. The VM
# has no network device: veth pairs and namespaces a test creates live inside it.
# EG_VM_ACCEL=kvm|tcg overrides the accelerator choice (see vm_accel).
# Needs: qemu-system-x86, busybox-static, cpio, python3, apt-get (tools/deps.sh).

VM_DIR=${VM_DIR:-$ROOT/build/vm}
VM_MODULES="virtio_pci 9pnet_virtio 9p veth"
VM_INIT=$ROOT/tests/lib/vm/init

vm_log() { echo "# vm: $*"; }

# The stock kernel's package: what linux-image-amd64 depends on (linux-image-6.1.0-N-amd64).
vm_kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'
}

# vm_fetch_kernel: build/vm/kernel/ (the unpacked package) and build/vm/vmlinux.
vm_fetch_kernel() {
	local pkg deb
	[ -s "$VM_DIR/vmlinux" ] && [ -d "$VM_DIR/kernel/lib/modules" ] && return 0
	pkg=$(vm_kernel_pkg)
	[ -n "$pkg" ] || { vm_log "apt-cache knows no linux-image-amd64"; return 1; }
	mkdir -p "$VM_DIR"
	deb=$(ls "$VM_DIR"/"${pkg}"_*.deb 2>/dev/null | head -1)
	if [ -z "$deb" ]; then
		vm_log "downloading $pkg"
		(cd "$VM_DIR" && apt-get download "$pkg" >/dev/null 2>&1) || { vm_log "apt-get download $pkg failed"; return 1; }
		deb=$(ls "$VM_DIR"/"${pkg}"_*.deb | head -1)
	fi
	rm -rf "$VM_DIR/kernel" && dpkg -x "$deb" "$VM_DIR/kernel" || return 1
	# the ELF inside the bzImage (xz): booted through PVH, no decompressor in the guest
	python3 - "$VM_DIR"/kernel/boot/vmlinuz-* "$VM_DIR/vmlinux" <<'PY' || return 1
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0: sys.exit("no xz stream in " + sys.argv[1])
elf = lzma.LZMADecompressor().decompress(data[at:])
if elf[:4] != b"\x7fELF": sys.exit("the xz stream is not an ELF kernel")
open(sys.argv[2] + ".new", "wb").write(elf)
PY
	mv "$VM_DIR/vmlinux.new" "$VM_DIR/vmlinux"
}

# vm_modules_in_order: VM_MODULES and what they depend on (the .ko's depends=), each after
# its dependencies, as "name path" lines. The package ships no modules.dep (depmod runs at
# install) and depmod is not needed for this.
vm_modules_in_order() {
	python3 - "$VM_DIR/kernel/lib/modules" $VM_MODULES <<'PY'
import os, re, sys
root, want = sys.argv[1], sys.argv[2:]
path = {}
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".ko"): path[f[:-3].replace("-", "_")] = os.path.join(d, f)
done, out = set(), []
def add(m):
    m = m.replace("-", "_")
    if m in done: return
    if m not in path: sys.exit("module %s not in the package (built in?)" % m)
    done.add(m)
    info = re.search(rb"depends=([^\0]*)", open(path[m], "rb").read())
    for dep in filter(None, (info.group(1).decode() if info else "").split(",")): add(dep)
    out.append("%s %s" % (m, path[m]))
for m in want: add(m)
print("\n".join(out))
PY
}

# vm_build_initramfs: build/vm/initramfs.cpio.gz (busybox-static, init, the modules).
vm_build_initramfs() {
	local img=$VM_DIR/initramfs.cpio.gz st=$VM_DIR/initramfs.d bb list
	if [ -s "$img" ] && [ "$img" -nt "$VM_INIT" ] && [ "$img" -nt "$ROOT/tests/lib/vm.sh" ] &&
		[ "$img" -nt "$VM_DIR/vmlinux" ]; then
		return 0
	fi
	bb=$(command -v busybox) || { vm_log "no busybox (busybox-static)"; return 1; }
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' ||
		{ vm_log "$bb is not static (busybox-static)"; return 1; }
	list=$(vm_modules_in_order) || return 1
	rm -rf "$st" && mkdir -p "$st"/{bin,proc,sys,dev,modules,host}
	cp "$bb" "$st/bin/busybox"
	cp "$VM_INIT" "$st/init" && chmod 755 "$st/init"
	: >"$st/modules.order"
	while read -r name p; do
		cp "$p" "$st/modules/$name.ko"
		echo "$name" >>"$st/modules.order"
	done <<<"$list"
	(cd "$st" && find . | cpio -o -H newc --quiet | gzip -1) >"$img.new" && mv "$img.new" "$img"
	rm -rf "$st"
}

vm_prepare() {
	command -v qemu-system-x86_64 >/dev/null || { vm_log "no qemu-system-x86_64 (qemu-system-x86)"; return 1; }
	vm_fetch_kernel && vm_build_initramfs
}

# vm_accel: kvm where /dev/kvm runs an unmodified guest at speed, else tcg. A /dev/kvm
# backed by kvm_pvm (PVM, the nested host of a Firecracker-style guest without VMX/SVM)
# runs a stock kernel about a thousand times slower than TCG: its early boot alone takes
# minutes. So does a /dev/kvm that cannot be opened.
vm_accel() {
	if [ -n "${EG_VM_ACCEL:-}" ]; then echo "$EG_VM_ACCEL"; return; fi
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] &&
		grep -qw -e vmx -e svm /proc/cpuinfo; then
		echo kvm
	else
		echo tcg
	fi
}

vm_run() {
	local limit=$1 cwd=$2 cmd=$3 accel cpu env="" start line
	shift 3
	for a in "$@"; do env="$env eg.env=$a"; done
	# VM_SHARE: a directory on a filesystem the VM mounts afresh (a clone under /tmp),
	# exported read-only as a second 9p share and mounted at the same path inside
	local share=()
	if [ -n "${VM_SHARE:-}" ]; then
		share=(-virtfs "local,path=$VM_SHARE,mount_tag=share,security_model=none,readonly=on,multidevs=remap")
		env="$env eg.share=$VM_SHARE"
	fi
	accel=$(vm_accel)
	cpu=max; [ "$accel" = kvm ] && cpu=host
	VM_OUT=$(mktemp /tmp/eg-vm-out.XXXXXX)
	VM_CONSOLE=$(mktemp /tmp/eg-vm-console.XXXXXX)
	VM_STATUS= VM_BOOT_SECONDS=
	VM_ACCEL=$accel
	vm_log "booting $(basename "$(ls "$VM_DIR"/kernel/boot/vmlinuz-*)") ($accel, ${VM_SMP:-2} vCPUs, ${VM_MEM:-2048} MiB, timeout ${limit}s)"
	start=$(date +%s.%N)
	# -nodefaults: no NIC, no display; the only devices are two serial ports and the 9p share
	timeout -k 5 "$limit" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "${VM_MEM:-2048}" -smp "${VM_SMP:-2}" \
		-nodefaults -display none -no-reboot -monitor none \
		-serial "file:$VM_CONSOLE" -serial "file:$VM_OUT" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		"${share[@]}" \
		-kernel "$VM_DIR/vmlinux" -initrd "$VM_DIR/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1 eg.cwd=$cwd eg.run=$cmd$env" \
		>"$VM_CONSOLE.qemu" 2>&1
	VM_QEMU_RC=$?
	VM_SECONDS=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$(date +%s.%N)")
	line=$(grep -a '^EG-VM-EXIT ' "$VM_OUT" | tail -1)
	line=${line%$'\r'} # the serial port's line ends
	[ -n "$line" ] && VM_STATUS=${line#EG-VM-EXIT }
	line=$(grep -a '^EG-VM-BOOTED ' "$VM_OUT" | head -1)
	line=${line%$'\r'}
	[ -n "$line" ] && VM_BOOT_SECONDS=${line#EG-VM-BOOTED }
	return 0
}
