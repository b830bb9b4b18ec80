#!/usr/bin/env bash
# Writes the Berkeley DB hash files the unit tests of src/rpmdb/bdb.rs read,
# with Berkeley DB's own db_load (Debian: db5.3-util), in db_dump's
# bytevalue format. Records: instance 0 (rpm's counter, value 6) and
# instances 1..5 of lengths 100, 700, 3000, 10 and 2000 whose byte j is
# (instance * 31 + j) % 251, keys in the file's byte order.
#   packages-le-512:  little-endian, 512-byte pages (overflow chains)
#   packages-be-4096: big-endian, 4096-byte pages
set -euo pipefail
cd "$(dirname "$0")"
load=$(command -v db_load || command -v db5.3_load)
input() {
  python3 - "$1" <<'PY'
import struct, sys
order = '<' if sys.argv[1] == 'le' else '>'
print('VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END')
print(' ' + struct.pack(order + 'I', 0).hex())
print(' ' + struct.pack(order + 'I', 6).hex())
for inst, n in [(3, 3000), (1, 100), (5, 2000), (2, 700), (4, 10)]:
    print(' ' + struct.pack(order + 'I', inst).hex())
    print(' ' + bytes((inst * 31 + j) % 251 for j in range(n)).hex())
print('DATA=END')
PY
}
rm -f packages-le-512 packages-be-4096
input le | "$load" -t hash -c db_pagesize=512 -c db_lorder=1234 packages-le-512
input be | "$load" -t hash -c db_pagesize=4096 -c db_lorder=4321 packages-be-4096
