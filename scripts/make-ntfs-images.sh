#!/usr/bin/env bash
# Makes the NTFS test images (reference ntfs.md §5) with mkntfs and an ntfs-3g FUSE mount.
# Needs root, /dev/fuse, ntfs-3g and python3. Usage: scripts/make-ntfs-images.sh [OUTDIR]
# Images: main (4K clusters, most cases), frag (attribute lists), mftfrag ($MFT with an
# attribute list), c512 and c65536 (cluster sizes, VCN units), s4096 (4096-byte sectors),
# secure (-o permissions), corrupt (torn fixup).
set -euo pipefail
OUT=${1:-$(dirname "$0")/../test/fixtures/ntfs/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/ferry-ntfs-XXXXXX)
MNT="$WORK/mnt"
mkdir -p "$MNT"
cleanup() { mountpoint -q "$MNT" && umount "$MNT" || true; rm -rf "$WORK"; }
trap cleanup EXIT

mk() { # name sizeMiB clusterBytes [mount options]
  local img="$WORK/$1.img" sector=512
  [ "$1" = s4096 ] && sector=4096
  truncate -s "$2M" "$img"
  mkntfs -F -q -s "$sector" -c "$3" "$img" 2>"$WORK/mkntfs.log" || { cat "$WORK/mkntfs.log" >&2; exit 1; }
  ntfs-3g -o "streams_interface=windows${4:+,$4}" "$img" "$MNT"
}
unmount() { sync; umount "$MNT"; }
py() { python3 - "$MNT" "$@"; }

# --- main: resident boundaries, sparse, links, ADS, 8.3, compression, names, deleted, reparse, big dir
mk main 64 4096 compression
py <<'PY'
import os, sys, random, struct
m = sys.argv[1]; r = random.Random(5)
def w(p, data):
    with open(os.path.join(m, p), 'wb') as f: f.write(data)
os.mkdir(f'{m}/res')
for n in (0, 1, 5, 600, 656, 657, 664, 700, 1000, 4096, 4097):
    w(f'res/r{n}', bytes(r.randrange(256) for _ in range(n)))
w('big.bin', r.randbytes(3 << 20))
# sparse: data in the middle of a hole; all-hole; data then extended (initialized < size)
with open(f'{m}/sparse.bin', 'wb') as f:
    f.truncate(10 << 20); f.seek(4 << 20); f.write(b'S' * 70000); f.seek(9 << 20); f.write(r.randbytes(5000))
with open(f'{m}/allhole.bin', 'wb') as f: f.truncate(5 << 20)
with open(f'{m}/grown.bin', 'wb') as f: f.write(r.randbytes(100000)); f.truncate(3 << 20)
# hard links: two short, forty long-named (attribute list)
w('linked', b'hard link target\n')
os.link(f'{m}/linked', f'{m}/res/linked-too')
w('manylinks', b'x' * 3000)
os.mkdir(f'{m}/links')
for i in range(40):
    os.link(f'{m}/manylinks', f'{m}/links/' + f'link-{i:03d}-' + 'L' * 180)
# alternate data streams
w('ads', b'main content\n')
w('ads:s1', b'x\n'); w('ads:big', r.randbytes(100000)); w('ads:empty', b'')
w('ads60', b'sixty\n')
for i in range(60): w(f'ads60:stream{i:02d}', f'value {i}\n'.encode() * (i + 1))
# 8.3 alias
w('Long File Name.txt', b'dos alias\n')
os.setxattr(f'{m}/Long File Name.txt', 'system.ntfs_dos_name', b'LONGFI~1.TXT')
# compressed directory: compressible, incompressible, zero, mixed, small
os.mkdir(f'{m}/comp')
os.setxattr(f'{m}/comp', 'system.ntfs_attrib_be', struct.pack('>I', 0x810))
w('comp/text.txt', b''.join(b'line %06d of some compressible text\n' % i for i in range(60000)))
w('comp/random.bin', r.randbytes(300000))
w('comp/zeros.bin', bytes(200000))
w('comp/mixed.bin', b''.join((bytes(65536) if i % 3 == 0 else (r.randbytes(65536) if i % 3 == 1 else b'abc' * 21845 + b'z')) for i in range(9)))
w('comp/small.txt', b'tiny\n')
with open(f'{m}/comp/sparse-comp.bin', 'wb') as f: f.truncate(1 << 20); f.seek(500000); f.write(b'hello' * 3000)
# names
for n in ('é', '日本語', '😀', 'CaseName', 'casename', 'space name', 'a.b.c'):
    w(n, n.encode() + b'\n')
# deleted entries
for i in range(5): w(f'gone{i}', b'deleted\n' * 200)
for i in range(5): os.unlink(f'{m}/gone{i}')
# reparse point (symlink tag, relative) and an Interix symlink
w('reparse', b'')
tgt = 'linked'.encode('utf-16-le')
body = struct.pack('<HHHHI', 0, len(tgt), len(tgt), len(tgt), 1) + tgt + tgt
os.setxattr(f'{m}/reparse', 'system.ntfs_reparse_data', struct.pack('<IHH', 0xA000000C, len(body), 0) + body)
os.symlink('linked', f'{m}/symlink')
# a directory of 3000 entries
os.mkdir(f'{m}/many')
for i in range(3000): w(f'many/entry-{i:05d}-with-a-longer-name', str(i).encode())
os.mkdir(f'{m}/empty-dir')
PY
unmount

# --- frag: two interleaved growing files (311 runs, attribute lists) on a small volume
mk frag 32 4096
py <<'PY'
import sys, random
m = sys.argv[1]; r = random.Random(7)
for i in range(500):
    for n in ('A', 'B'):
        with open(f'{m}/{n}', 'ab') as f: f.write(r.randbytes(4096))
PY
unmount

# --- mftfrag: 16000 empty files with a 4K file after every 8th ($MFT split over an attribute list)
mk mftfrag 48 4096
py <<'PY'
import os, sys
m = sys.argv[1]
os.mkdir(f'{m}/d')
for i in range(16000):
    open(f'{m}/d/e{i:05d}', 'wb').close()
    if i % 8 == 7:
        with open(f'{m}/d/f{i:05d}', 'wb') as f: f.write(bytes([i & 255]) * 4096)
PY
unmount

# --- small and large clusters: 600-entry directory, a few files
for c in 512 65536; do
  mk "c$c" 64 "$c"
  py "$c" <<'PY'
import os, sys, random
m, c = sys.argv[1], int(sys.argv[2]); r = random.Random(c)
os.mkdir(f'{m}/dir')
for i in range(600):
    with open(f'{m}/dir/file-{i:04d}-name', 'wb') as f: f.write(r.randbytes(i * 37 % 5000))
with open(f'{m}/big', 'wb') as f: f.write(r.randbytes(1 << 20))
with open(f'{m}/sparse', 'wb') as f: f.truncate(8 << 20); f.seek(3 << 20); f.write(b'q' * 200000)
with open(f'{m}/ads', 'wb') as f: f.write(b'main\n')
with open(f'{m}/ads:named', 'wb') as f: f.write(r.randbytes(20000))
PY
  unmount
done

# --- s4096: 4096-byte sectors, 8K clusters, 4K records; 4K index blocks < cluster (VCNs in 512 B units)
mk s4096 32 8192
py <<'PY'
import os, sys, random
m = sys.argv[1]; r = random.Random(4096)
os.mkdir(f'{m}/d')
for i in range(300):
    with open(f'{m}/d/f{i:03d}', 'wb') as f: f.write(r.randbytes(i * 50))
with open(f'{m}/big', 'wb') as f: f.write(r.randbytes(1 << 20))
with open(f'{m}/sparse', 'wb') as f: f.truncate(4 << 20); f.seek(1 << 20); f.write(b'z' * 30000)
PY
unmount

# --- secure: per-file permissions ($Secure)
mk secure 16 4096 permissions
py <<'PY'
import os, sys
m = sys.argv[1]
for i, mode in enumerate((0o600, 0o644, 0o755, 0o640)):
    p = f'{m}/perm{i}'
    with open(p, 'wb') as f: f.write(b'mode %o\n' % mode)
    os.chmod(p, mode)
PY
unmount

# --- corrupt: a small volume where one file's record has a torn fixup (byte 510 overwritten)
mk corrupt 16 4096
py <<'PY'
import sys
m = sys.argv[1]
for n in ('good1', 'victim', 'good2'):
    with open(f'{m}/{n}', 'wb') as f: f.write(n.encode() * 100)
PY
unmount
VICTIM=$(ntfsls -i "$WORK/corrupt.img" | awk '$2=="victim"{print $1}')
python3 - "$WORK/corrupt.img" "$VICTIM" <<'PY'
import struct, sys
img, rec = sys.argv[1], int(sys.argv[2])
with open(img, 'r+b') as f:
    boot = f.read(512)
    bps = struct.unpack_from('<H', boot, 0x0B)[0]; spc = boot[0x0D]
    cs = bps * (spc if spc <= 128 else 1 << (256 - spc))
    mft = struct.unpack_from('<Q', boot, 0x30)[0] * cs
    f.seek(mft + rec * 1024 + 510); f.write(b'\xEE')
PY

mv "$WORK"/*.img "$OUT"/
echo "images in $OUT: $(cd "$OUT" && ls *.img | tr '\n' ' ')"
