"""Crash test for `eddyfs put` (the volume client without FUSE): a put fed
through a pipe is killed with kill -9 at a random point of its stream (or
after its input ended, while it writes its last block, fsyncs or commits),
many times on one volume.  After every kill, fsck finds no problem (an
unfinished write leaves at worst unreferenced blocks, which are noted, not
problems); at the end --repair collects the leftovers, fsck is spotless and
every put that exited 0 (durable on exit: it fsyncs) has its content.
The mount's crash test is in test_volume_fsck.py."""

import hashlib
import os
import random
import signal
import subprocess

from conftest import SQLITE

CLEAN = 0
ROUNDS = 24


def _fsck(run_eddy, vol, *args):
    r = run_eddy("fsck", *args, vol)
    assert r.returncode == CLEAN, (r.returncode, r.stdout, r.stderr)
    return r


def test_put_killed_at_random_points(run_eddy, make_volume, eddy_bin, spawn):
    seed = int(os.environ.get("EDDYFS_CRASH_SEED", random.randrange(1 << 30)))
    print(f"put crash test seed {seed} (EDDYFS_CRASH_SEED to repeat)")
    rnd = random.Random(seed)
    vol = make_volume("--block-size", "64K")
    confirmed, killed, leftovers = {}, 0, 0
    for it in range(ROUNDS):
        data = rnd.randbytes(rnd.randrange(1, 1 << 20))
        name = f"/p{it}"
        p = spawn([eddy_bin, "put", f"{SQLITE}{vol}", "-", name],
                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
        cut = rnd.randrange(len(data) + 1)
        mode = it % 3           # 0: wait for it, 1: kill mid-stream, 2: kill at the end
        try:
            # blocks until put has read all but a pipe's worth of it
            p.stdin.write(data[:cut])
            p.stdin.flush()
            finish = mode != 1
            if finish:
                p.stdin.write(data[cut:])
                p.stdin.close()
        except BrokenPipeError:
            finish = False
        if mode == 0:
            assert p.wait() == 0, f"round {it} (seed {seed}): put failed"
            confirmed[name] = hashlib.sha256(data).hexdigest()
        else:                       # mid-stream, or in its last write/fsync/commit
            os.kill(p.pid, signal.SIGKILL)
            if p.wait() == 0:       # it finished before the signal came
                confirmed[name] = hashlib.sha256(data).hexdigest()
            else:
                killed += 1
        if p.stdin and not p.stdin.closed:
            try:
                p.stdin.close()
            except BrokenPipeError:
                pass
        r = _fsck(run_eddy, vol)    # exit 0: no problem, leftovers noted
        leftovers += "unreferenced block file(s) and" in r.stdout
    print(f"{killed} puts killed, {len(confirmed)} confirmed, "
          f"{leftovers} fsck runs noted unreferenced blocks or unfinished writes")
    assert killed and confirmed, (killed, confirmed)
    _fsck(run_eddy, vol, "--repair")
    r = _fsck(run_eddy, vol)
    assert "0 orphan(s); 0 unreferenced" in r.stdout, r.stdout
    for name, digest in confirmed.items():
        r = run_eddy("cat", f"{SQLITE}{vol}", name, text=False)
        assert r.returncode == 0, (name, r.stderr)
        assert hashlib.sha256(r.stdout).hexdigest() == digest, \
            f"seed {seed}: {name} was put (exit 0), content differs"
