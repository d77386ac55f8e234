#!/bin/sh
# `make install` gives a usable C library: into a temporary PREFIX it installs the binary, libcnnlab.a,
# libcnnlab.so with its soname links, the header, cnnlab.pc and the man page; the README's library example
# (its C block, taken from README.md so that the text cannot drift) builds with
# `cc example.c $(pkg-config --cflags --libs cnnlab)` against the shared library, and with --static against
# a prefix holding only the static one, and both programs train and print a test accuracy. A DESTDIR
# install lands under DESTDIR with PREFIX in cnnlab.pc, and `make uninstall` removes every file it wrote.
# Prints cmocka-style PASSED/FAILED lines for tests/run.sh.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...: runs the command, quietly, and records a failure
    what=$1
    shift
    if ! "$@" > "$tmp/out" 2>&1; then
        echo "FAILED: $what"
        sed 's/^/    /' "$tmp/out" | tail -n 20
        fail=1
    fi
}
mk() {
    make -s --no-print-directory -C "$root" BUILD="$build" "$@"
}
p=$tmp/prefix
check "make install PREFIX=$p" mk install PREFIX="$p"
for f in bin/cnnlab lib/libcnnlab.a lib/libcnnlab.so.0.1.0 include/cnnlab.h lib/pkgconfig/cnnlab.pc \
    share/man/man1/cnnlab.1; do
    check "$f installed" test -f "$p/$f"
done
check "libcnnlab.so.0 -> libcnnlab.so.0.1.0" test "$(readlink "$p/lib/libcnnlab.so.0")" = libcnnlab.so.0.1.0
check "libcnnlab.so -> libcnnlab.so.0" test "$(readlink "$p/lib/libcnnlab.so")" = libcnnlab.so.0
check "soname libcnnlab.so.0" sh -c "readelf -d '$p/lib/libcnnlab.so.0.1.0' | grep -q 'SONAME.*\\[libcnnlab.so.0\\]'"
check "installed cnnlab runs" "$p/bin/cnnlab" --version
check "man page renders" sh -c "groff -man -ww -z '$p/share/man/man1/cnnlab.1' 2>&1 | (! grep .)"

# The README's example: the first C block after "## Library".
sed -n '/^## Library/,$p' "$root/README.md" | sed -n '/^```c$/,/^```$/p' | sed '1d;$d' > "$tmp/example.c"
check "README has a C example" test -s "$tmp/example.c"
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
check "pkg-config knows cnnlab" pkg-config --exists cnnlab
check "shared build of the example" sh -c "cc -o '$tmp/ex_shared' '$tmp/example.c' \$(pkg-config --cflags --libs cnnlab)"
check "the shared example needs libcnnlab.so.0" sh -c "readelf -d '$tmp/ex_shared' | grep -q 'NEEDED.*libcnnlab.so.0'"
# A static-only prefix (a package without the shared library): the same commands, with --static.
cp -R "$p" "$tmp/static"
rm -f "$tmp/static/lib/libcnnlab.so"*
sed -i "s|^prefix=.*|prefix=$tmp/static|; s|^libdir=.*|libdir=$tmp/static/lib|; s|^includedir=.*|includedir=$tmp/static/include|" \
    "$tmp/static/lib/pkgconfig/cnnlab.pc"
export PKG_CONFIG_PATH="$tmp/static/lib/pkgconfig"
check "static build of the example" sh -c "cc -o '$tmp/ex_static' '$tmp/example.c' \$(pkg-config --cflags --libs --static cnnlab)"
check "the static example needs no libcnnlab.so" sh -c "! readelf -d '$tmp/ex_static' | grep -q libcnnlab"
skipped=0
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
    [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte ]; then
    for kind in shared static; do
        check "the $kind example trains" sh -c "LD_LIBRARY_PATH='$p/lib' '$tmp/ex_$kind' > '$tmp/$kind.txt'"
        check "the $kind example prints its accuracy" grep -q '^test accuracy: [0-9.]*%$' "$tmp/$kind.txt"
        cat "$tmp/$kind.txt" | tail -n 1 | sed "s/^/$kind example: /"
    done
else
    echo "no Fashion-MNIST in /usr/share/datasets/fashion-mnist: the examples were built, not run"
    skipped=1
fi

d=$tmp/stage
check "make install DESTDIR" mk install DESTDIR="$d" PREFIX=/opt/cnnlab
check "DESTDIR install under DESTDIR/PREFIX" test -x "$d/opt/cnnlab/bin/cnnlab"
check "cnnlab.pc names PREFIX" grep -qx 'prefix=/opt/cnnlab' "$d/opt/cnnlab/lib/pkgconfig/cnnlab.pc"
check "make uninstall" mk uninstall DESTDIR="$d" PREFIX=/opt/cnnlab
check "uninstall leaves no file" test -z "$(find "$d" ! -type d)"

if [ $fail -ne 0 ]; then
    echo "[  FAILED  ] 1 test(s), listed above."
elif [ $skipped -ne 0 ]; then
    echo "[  PASSED  ] 0 test(s)."
    echo "[  SKIPPED ] 1 test(s)."
else
    echo "[  PASSED  ] 1 test(s)."
fi
exit $fail
