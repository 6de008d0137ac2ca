#!/usr/bin/env bash
# Pack this machine's festival, the libraries it links (not glibc's own) and its data, voices and
# lexicons into one tar.xz, so the teacher corpus can be rendered on a machine that has no festival
# and no package registry (scripts/device_train.py unpacks it and runs it with --libdir and --datadir).
#   bash scripts/pack_festival.sh OUT.tar.xz      # needs: apt-get install festival festvox-us-slt-hts
set -euo pipefail
out=${1:?usage: pack_festival.sh OUT.tar.xz}
festival=$(command -v festival) || { echo "festival is not installed: apt-get install -y festival festvox-us-slt-hts" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/share"
cp "$festival" "$stage/bin/festival"
for lib in $(ldd "$festival" | awk '/=>/ {print $3}'); do
    case $(basename "$lib") in
        libc.so*|libm.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;  # the host's glibc serves these
        *) cp -L "$lib" "$stage/lib/" ;;
    esac
done
cp -r /usr/share/festival "$stage/share/festival"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out" .
echo "{\"bundle\": \"$out\", \"bytes\": $(stat -c %s "$out")}"
