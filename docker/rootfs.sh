#!/bin/sh
# rootfs.sh BINARY DIR: lays out in DIR a root file system that runs
# BINARY as /usr/local/bin/reggie-build: the binary and each shared
# library ldd lists (the dynamic loader too), at the paths it lists them,
# so that a FROM scratch image needs nothing else.
set -eu
bin=${1:?usage: rootfs.sh BINARY DIR}
root=${2:?usage: rootfs.sh BINARY DIR}
mkdir -p "$root/usr/local/bin"
cp "$bin" "$root/usr/local/bin/reggie-build"
chmod 755 "$root/usr/local/bin/reggie-build"
# "libc.so.6 => /lib/.../libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
# the vdso has no file.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
