#!/usr/bin/python3
"""eiofs: a one-file FUSE filesystem whose reads of a byte range fail with EIO.

Usage (as root, with Debian's python3-fusepy; run it with /usr/bin/python3):

    eiofs.py MOUNTPOINT SIZE BAD_OFFSET BAD_LENGTH [--backing FILE] [--name NAME]

The mount holds a single regular file, NAME (default "disk.img"), SIZE bytes
long. Its content is zeros (sparse, writes kept in memory) or, with
--backing, the content of FILE (reads and writes go to FILE). Any read or
write that overlaps [BAD_OFFSET, BAD_OFFSET + BAD_LENGTH) fails with EIO.
Numbers accept a K/M/G suffix (powers of 1024).

The filesystem is mounted with direct_io, so the page cache never answers a
read: every read reaches this process. It runs in the foreground until it is
unmounted (fusermount3 -u / umount) or gets SIGTERM/SIGINT.
"""

import argparse
import errno
import os
import stat
import sys
import threading
import time

import fusepy

BLOCK = 4096


def parse_size(text):
    text = text.strip()
    mult = 1
    suffixes = {'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}
    if text and text[-1].lower() in suffixes:
        mult = suffixes[text[-1].lower()]
        text = text[:-1]
    value = int(text, 0) * mult
    if value < 0:
        raise argparse.ArgumentTypeError('must not be negative')
    return value


class EioFS(fusepy.Operations):
    use_ns = True

    def __init__(self, name, size, bad_offset, bad_length, backing):
        self._path = '/' + name
        self._size = size
        self._bad_start = bad_offset
        self._bad_end = bad_offset + bad_length
        self._backing_fd = None
        if backing is not None:
            self._backing_fd = os.open(backing, os.O_RDWR)
        self._blocks = {}  # sparse in-memory content: block index -> bytearray
        self._mutex = threading.Lock()
        self._now = time.time_ns()
        self._eio_count = 0

    # --- helpers -------------------------------------------------------

    def _overlaps_bad(self, offset, length):
        return length > 0 and offset < self._bad_end and offset + length > self._bad_start

    def _fail(self, what, offset, length):
        self._eio_count += 1
        sys.stderr.write('eiofs: EIO for %s offset=%d length=%d\n' % (what, offset, length))
        sys.stderr.flush()
        raise fusepy.FuseOSError(errno.EIO)

    # --- metadata ------------------------------------------------------

    def getattr(self, path, fh=None):
        base = {'st_uid': 0, 'st_gid': 0, 'st_atime': self._now,
                'st_mtime': self._now, 'st_ctime': self._now}
        if path == '/':
            base.update(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_size=0)
            return base
        if path == self._path:
            base.update(st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=self._size,
                        st_blocks=(self._size + 511) // 512)
            return base
        raise fusepy.FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        if path != '/':
            raise fusepy.FuseOSError(errno.ENOTDIR)
        return ['.', '..', self._path[1:]]

    def open(self, path, flags):
        if path != self._path:
            raise fusepy.FuseOSError(errno.ENOENT)
        return 0

    def truncate(self, path, length, fh=None):
        # The size is fixed: accept a no-op truncate, refuse anything else.
        if path != self._path:
            raise fusepy.FuseOSError(errno.ENOENT)
        if length != self._size:
            raise fusepy.FuseOSError(errno.EPERM)
        return 0

    def statfs(self, path):
        blocks = (self._size + BLOCK - 1) // BLOCK
        return {'f_bsize': BLOCK, 'f_frsize': BLOCK, 'f_blocks': blocks,
                'f_bfree': 0, 'f_bavail': 0, 'f_files': 1, 'f_ffree': 0,
                'f_favail': 0, 'f_namemax': 255}

    # --- data ----------------------------------------------------------

    def read(self, path, size, offset, fh):
        if path != self._path:
            raise fusepy.FuseOSError(errno.ENOENT)
        if offset >= self._size:
            return b''
        size = min(size, self._size - offset)
        if self._overlaps_bad(offset, size):
            self._fail('read', offset, size)
        if self._backing_fd is not None:
            return os.pread(self._backing_fd, size, offset)
        out = bytearray(size)
        with self._mutex:
            pos = offset
            while pos < offset + size:
                idx, within = divmod(pos, BLOCK)
                n = min(BLOCK - within, offset + size - pos)
                blk = self._blocks.get(idx)
                if blk is not None:
                    out[pos - offset:pos - offset + n] = blk[within:within + n]
                pos += n
        return bytes(out)

    def write(self, path, data, offset, fh):
        if path != self._path:
            raise fusepy.FuseOSError(errno.ENOENT)
        if offset >= self._size:
            raise fusepy.FuseOSError(errno.ENOSPC)
        data = data[:self._size - offset]
        if self._overlaps_bad(offset, len(data)):
            self._fail('write', offset, len(data))
        if self._backing_fd is not None:
            return os.pwrite(self._backing_fd, data, offset)
        with self._mutex:
            pos = offset
            while pos < offset + len(data):
                idx, within = divmod(pos, BLOCK)
                n = min(BLOCK - within, offset + len(data) - pos)
                chunk = data[pos - offset:pos - offset + n]
                blk = self._blocks.get(idx)
                if blk is None:
                    if not any(chunk):
                        pos += n
                        continue
                    blk = self._blocks[idx] = bytearray(BLOCK)
                blk[within:within + n] = chunk
                pos += n
        return len(data)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        if self._backing_fd is not None:
            os.fsync(self._backing_fd)
        return 0

    def release(self, path, fh):
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('mountpoint')
    ap.add_argument('size', type=parse_size)
    ap.add_argument('bad_offset', type=parse_size)
    ap.add_argument('bad_length', type=parse_size)
    ap.add_argument('--backing', help='serve this file\'s content instead of zeros')
    ap.add_argument('--name', default='disk.img', help='name of the served file')
    args = ap.parse_args()

    if '/' in args.name or args.name in ('', '.', '..'):
        ap.error('--name must be a plain file name')
    if args.backing is not None:
        real = os.path.getsize(args.backing)
        if real < args.size:
            ap.error('backing file is %d bytes, smaller than size %d' % (real, args.size))

    fs = EioFS(args.name, args.size, args.bad_offset, args.bad_length, args.backing)

    # No Python signal handlers: libfuse installs its own for SIGINT, SIGTERM
    # and SIGHUP (when they are at their defaults), which leave the loop and
    # unmount. A Python handler would never run while fuse_main blocks.
    sys.stderr.write('eiofs: serving %s/%s size=%d bad=[%d,%d) pid=%d\n' % (
        args.mountpoint, args.name, args.size, fs._bad_start, fs._bad_end, os.getpid()))
    sys.stderr.flush()
    fusepy.FUSE(fs, args.mountpoint, foreground=True, nothreads=False,
                direct_io=True, fsname='eiofs', subtype='eiofs',
                attr_timeout=0, entry_timeout=0)
    sys.stderr.write('eiofs: unmounted %s (%d EIO returned)\n' % (args.mountpoint, fs._eio_count))


if __name__ == '__main__':
    main()
