"""The host facts a benchmark reports beside its figures."""
import os


def filesystem(path):
    """The type of the filesystem that holds path (the longest mount point above it)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            mnt, fstype = line.split()[1:3]
            mnt = mnt.replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, kind = mnt, fstype
    return kind
